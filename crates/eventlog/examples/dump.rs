//! Print a log's events (development aid): `cargo run --example dump -- FILE`.
fn main() {
    let path = std::env::args().nth(1).expect("usage: dump FILE");
    let bytes = std::fs::read(path).expect("read");
    let log = keylime_eventlog::EventLog::parse(&bytes).expect("parse");
    for e in &log.events {
        println!(
            "{:3} pcr{:<2} {:<34} {:?} {:?}",
            e.number,
            e.pcr,
            e.event_type.to_string(),
            e.digest_check,
            e.decode()
                .map(|d| format!("{d:?}").chars().take(100).collect::<String>())
        );
    }
}
