use serde_json::json;

use super::*;

fn experiment(sessions: serde_json::Value) -> Experiment {
    serde_json::from_value(json!({
        "subject": "Beam study", "proposal_id": 20260042, "body": "...", "beam_line": "BL-09",
        "uid": "2001", "gid": 3001, "sessions": sessions,
    }))
    .unwrap()
}

#[test]
fn the_user_offices_answer_reads_as_calipsoplus_documents_it() {
    let page: UserOfficePage = serde_json::from_value(json!({
        "count": 1, "next": null, "previous": null,
        "results": [{"subject": "s", "proposal_id": "P-1", "body": "b", "beam_line": "BL",
            "uid": 2001, "gid": "3001",
            "sessions": [{"sesion_number": 7, "start_date": "2026-01-01", "end_date": "2026-01-02",
                "subject": "s1", "body": "b1", "data_set_path": "/2026/P-1/7"}]}],
    }))
    .unwrap();
    let found = &page.results[0];
    assert_eq!((found.proposal_id.as_str(), found.uid, found.gid), ("P-1", Some(2001), Some(3001)));
    assert_eq!(found.sessions[0].number, "7");
    assert_eq!(experiment(json!([])).proposal_id, "20260042");
}

#[test]
fn each_sessions_dataset_is_a_folder_under_data() {
    let found = experiment(json!([
        {"sesion_number": "1", "data_set_path": "/2026/42/1/"},
        {"sesion_number": "2", "data_set_path": "{\"path\": \"2026/42/2\", \"type\": \"nfs\"}"},
        {"sesion_number": "3", "data_set_path": {"path": "2026/42/3"}},
        {"sesion_number": "1", "data_set_path": "2026/42/1b"},
        {"sesion_number": "4"},
    ]));
    assert_eq!(
        found.datasets().unwrap(),
        [
            ("1".to_owned(), "2026/42/1".to_owned()),
            ("2".to_owned(), "2026/42/2".to_owned()),
            ("3".to_owned(), "2026/42/3".to_owned()),
            ("session-4".to_owned(), "2026/42/1b".to_owned()),
        ]
    );
}

#[test]
fn a_dataset_path_that_climbs_out_is_refused() {
    for path in ["../etc", "2026/../../root", "a/./b", "a b", "/", "x\ny"] {
        let found = experiment(json!([{"sesion_number": "1", "data_set_path": path}]));
        let refused = found.datasets().unwrap_err();
        assert!(matches!(refused, Error::Upstream { .. }), "{path}: {refused:?}");
    }
}

#[test]
fn a_listing_is_checked_part_by_part() {
    let listing = |search: Option<&str>, ordering: Option<&str>, page: Option<&str>, size: Option<&str>| {
        ExperimentQuery {
            search: search.map(str::to_owned),
            ordering: ordering.map(str::to_owned),
            page: page.map(str::to_owned),
            page_size: size.map(str::to_owned),
        }
        .listing()
    };
    let default = listing(None, None, None, None).unwrap();
    assert_eq!((default.page, default.page_size, default.search), (1, DEFAULT_PAGE_SIZE, None));
    let chosen = listing(Some("beam"), Some("-subject"), Some("3"), Some("100")).unwrap();
    assert_eq!((chosen.ordering.as_deref(), chosen.page, chosen.page_size), (Some("-subject"), 3, 100));
    for (query, part) in [
        (listing(None, Some("uid"), None, None), "ordering"),
        (listing(None, None, Some("0"), None), "page"),
        (listing(None, None, None, Some("101")), "page_size"),
        (listing(Some(&"x".repeat(101)), None, None, None), "search"),
    ] {
        let refused = query.unwrap_err();
        assert!(refused.to_string().contains(part), "{refused}");
    }
}
