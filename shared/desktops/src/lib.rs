//! Remote desktops (CalipsoPlus, seed 002): a user's desktop runs as a Pod on Kubernetes with
//! the experiment's data mounted, and opens in the browser through Apache Guacamole.
//!
//! - [`guacamole`]: Guacamole's encrypted-JSON authentication (`guacamole-auth-json`): the
//!   signed, encrypted login for exactly one connection that Portico hands a user.
//!
//! Built so far: the Guacamole login. The environments registry, the desktops themselves, the
//! cluster client and the routes are to come (see the note).

pub mod guacamole;
