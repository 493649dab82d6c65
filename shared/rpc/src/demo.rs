//! A built-in demo Cuebot, so `cargo run` answers OpenCue calls with no Cuebot installed: a
//! few shows, jobs and frames (with int64 counters and enums), served over real gRPC by
//! [`crate::server`] on 127.0.0.1. It answers FindShow, GetShows, GetActiveShows, FindJob,
//! GetJobs and GetFrames; every other method is UNIMPLEMENTED.

use std::sync::Arc;

use prost_reflect::{DynamicMessage, MethodDescriptor};
use serde_json::{Value, json};
use tonic::{Response, Status};

use crate::server::{Answer, Handler};
use crate::transcode::{self, UnknownFields};

fn shows() -> Value {
    json!([
        {
            "id": "00000000-0000-0000-0000-000000000000", "name": "testshow",
            "defaultMinCores": 1, "defaultMaxCores": 10, "commentEmail": "middle-tier@company.com",
            "bookingEnabled": true, "dispatchEnabled": true, "active": true,
            "showStats": {
                "runningFrames": 75, "deadFrames": 14, "pendingFrames": 1814, "pendingJobs": 175,
                "createdJobCount": "2353643", "createdFrameCount": "10344702",
                "renderedFrameCount": "9733366", "failedFrameCount": "1096394", "reservedCores": 252, "reservedGpus": 0
            },
            "defaultMinGpus": 100, "defaultMaxGpus": 100000
        },
        {
            "id": "00000000-0000-0000-0000-0000000000aa", "name": "archive",
            "defaultMinCores": 1, "defaultMaxCores": 4, "active": false,
            "showStats": {"createdJobCount": "42", "createdFrameCount": "4200", "renderedFrameCount": "4200"}
        }
    ])
}

fn jobs() -> Value {
    json!([
        {
            "id": "00000000-0000-0000-0000-000000000001", "state": "PENDING", "name": "testshow-shot01-lighting",
            "shot": "shot01", "show": "testshow", "user": "demo", "group": "testshow", "facility": "local",
            "os": "linux", "priority": 100, "minCores": 1, "maxCores": 8, "logDir": "/tmp/demo/logs",
            "startTime": 1707842141,
            "jobStats": {"totalLayers": 1, "totalFrames": 5, "waitingFrames": 3, "runningFrames": 1, "succeededFrames": 1}
        },
        {
            "id": "00000000-0000-0000-0000-000000000007", "state": "FINISHED", "name": "testshow-shot02-comp",
            "shot": "shot02", "show": "testshow", "user": "demo", "group": "testshow", "facility": "local",
            "os": "linux", "priority": 50, "startTime": 1707800000, "stopTime": 1707803600,
            "jobStats": {"totalLayers": 1, "totalFrames": 2, "succeededFrames": 2}
        }
    ])
}

fn frames(job: &str) -> Value {
    let states = ["SUCCEEDED", "RUNNING", "WAITING", "WAITING", "WAITING"];
    let count = if job.ends_with("0001") { 5 } else { 2 };
    Value::Array(
        (1..=count)
            .map(|n: i64| {
                json!({
                    "id": frame_id(job, n), "name": format!("{n:04}-bty_tp_3d_123456"),
                    "layerName": "bty_tp_3d_123456", "number": n,
                    "state": if count == 2 { "SUCCEEDED" } else { states[(n - 1) as usize] },
                    "exitStatus": if n == 1 || count == 2 { 0 } else { -1 }, "dispatchOrder": n - 1,
                    "maxRss": (n * 1_048_576).to_string(), "usedMemory": "0", "lastResource": "/0.00/0",
                    "checkpointState": "DISABLED", "lluTime": 1707842141
                })
            })
            .collect(),
    )
}

/// A UUID-shaped frame id, distinct per job and frame (`job` is one of [`jobs`]' ids).
fn frame_id(job: &str, n: i64) -> String {
    format!("{}-{n:04}-{}", &job[..18], &job[24..])
}

/// The demo Cuebot's handler.
pub fn cuebot() -> Handler {
    Arc::new(|method: MethodDescriptor, request: DynamicMessage, _| -> Answer {
        Box::pin(async move {
            let req = transcode::response(&request);
            let answer = answer(&method, &req)?;
            let message = transcode::request(&method.output(), answer.to_string().as_bytes(), UnknownFields::Reject)
                .map_err(|e| Status::internal(format!("demo data: {e}")))?;
            Ok(Response::new(message))
        })
    })
}

fn answer(method: &MethodDescriptor, req: &Value) -> Result<Value, Status> {
    let by_name = |list: Value, name: &str| list.as_array().and_then(|l| l.iter().find(|x| x["name"] == name).cloned());
    match (method.parent_service().full_name(), method.name()) {
        ("show.ShowInterface", "FindShow") => match by_name(shows(), req["name"].as_str().unwrap_or("")) {
            Some(show) => Ok(json!({"show": show})),
            None => Err(Status::not_found("show not found")),
        },
        ("show.ShowInterface", "GetShows") => Ok(json!({"shows": {"shows": shows()}})),
        ("show.ShowInterface", "GetActiveShows") => {
            let active: Vec<Value> =
                shows().as_array().into_iter().flatten().filter(|s| s["active"] == true).cloned().collect();
            Ok(json!({"shows": {"shows": active}}))
        }
        ("job.JobInterface", "FindJob") => match by_name(jobs(), req["name"].as_str().unwrap_or("")) {
            Some(job) => Ok(json!({"job": job})),
            None => Err(Status::not_found("job not found")),
        },
        ("job.JobInterface", "GetJobs") => {
            let criteria = &req["r"];
            let wanted = |key: &str, job: &Value, field: &str| {
                criteria[key].as_array().is_none_or(|l| l.is_empty() || l.contains(&job[field]))
            };
            let finished = criteria["includeFinished"] == true;
            let jobs: Vec<Value> = jobs()
                .as_array()
                .into_iter()
                .flatten()
                .filter(|j| wanted("shows", j, "show") && wanted("users", j, "user") && wanted("ids", j, "id"))
                .filter(|j| finished || j["state"] != "FINISHED")
                .cloned()
                .collect();
            Ok(json!({"jobs": {"jobs": jobs}}))
        }
        ("job.JobInterface", "GetFrames") => {
            let id = req["job"]["id"].as_str().unwrap_or("");
            if !jobs().as_array().is_some_and(|l| l.iter().any(|j| j["id"] == id)) {
                return Err(Status::not_found("job not found"));
            }
            let limit = req["req"]["limit"].as_i64().filter(|l| *l > 0).unwrap_or(1000) as usize;
            let page = req["req"]["page"].as_i64().filter(|p| *p > 0).unwrap_or(1) as usize;
            let all = frames(id);
            let list: Vec<Value> =
                all.as_array().into_iter().flatten().skip((page - 1) * limit).take(limit).cloned().collect();
            Ok(json!({"frames": {"frames": list}}))
        }
        (service, name) => Err(Status::unimplemented(format!(
            "the demo Cuebot does not implement {service}/{name} (it answers FindShow, GetShows, GetActiveShows, FindJob, GetJobs, GetFrames)"
        ))),
    }
}
