use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdout, Command, Stdio};

use super::*;

/// Environment of a [`hold`] child: how many ports to reserve, and a port it must try to
/// reserve as well (one the parent holds).
const HOLD_COUNT: &str = "KEYLIME_TEST_PORTS_HOLD";
const HOLD_PROBE: &str = "KEYLIME_TEST_PORTS_PROBE";

#[test]
fn reservations_lie_outside_the_ephemeral_range_and_avoid_known_services() {
    let (lo, hi) = ephemeral_range();
    for _ in 0..20 {
        let port = reserve();
        assert!(port >= FLOOR, "{port} below {FLOOR}");
        assert!(!(lo..=hi).contains(&port), "{port} in ephemeral {lo}-{hi}");
        assert!(!AVOIDED.contains(&port), "{port} is a service's port");
    }
    let pair = reserve_pair();
    assert!(pool().contains(&pair) && pool().contains(&(pair + 1)));
}

#[test]
fn a_held_port_is_not_handed_out_again() {
    let port = reserve();
    assert!(
        try_reserve(port).is_none(),
        "{port} reserved a second time while held"
    );
    let first = reserve_pair();
    assert!(try_reserve(first).is_none() && try_reserve(first + 1).is_none());
    let many: Vec<u16> = (0..200).map(|_| reserve()).collect();
    let distinct: HashSet<u16> = many.iter().copied().collect();
    assert_eq!(distinct.len(), many.len(), "a port handed out twice");
    assert!(!distinct.contains(&port) && !distinct.contains(&first));
}

#[test]
fn a_port_something_listens_on_is_skipped() {
    let port = pool()
        .into_iter()
        .find(|&p| TcpListener::bind((Ipv4Addr::LOCALHOST, p)).is_ok())
        .expect("a bindable port in the pool");
    // Listening without taking the lock: what another program on the machine would do.
    let _listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).unwrap();
    assert!(try_reserve(port).is_none(), "{port} reserved while in use");
}

#[test]
fn parallel_threads_never_share_a_port() {
    let threads: Vec<_> = (0..8)
        .map(|_| std::thread::spawn(|| (0..25).map(|_| reserve()).collect::<Vec<u16>>()))
        .collect();
    let all: Vec<u16> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    let distinct: HashSet<u16> = all.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        all.len(),
        "threads were handed the same port"
    );
}

/// Two other test processes reserving at the same time as this one: all three sets are
/// disjoint, and neither child can reserve a port this process holds. The children are this
/// test run again, told by their environment to [`hold`] ports instead.
#[test]
fn parallel_processes_never_share_a_port() {
    if let Ok(count) = std::env::var(HOLD_COUNT) {
        return hold(count.parse().unwrap());
    }
    let mine: Vec<u16> = (0..50).map(|_| reserve()).collect();
    let mut children: Vec<Holder> = (0..2).map(|_| Holder::spawn(150, mine[0])).collect();
    let theirs: Vec<(Vec<u16>, String)> = children.iter_mut().map(Holder::reserved).collect();
    let mut seen: HashSet<u16> = mine.iter().copied().collect();
    for (ports, probe) in &theirs {
        assert_eq!(ports.len(), 150);
        for p in ports {
            assert!(seen.insert(*p), "port {p} handed to two processes");
        }
        assert_eq!(
            probe, "taken",
            "a child reserved port {} held here",
            mine[0]
        );
    }
    for child in children {
        child.finish();
    }
}

/// A child of [`parallel_processes_never_share_a_port`]: reserves `count` ports (and tries
/// the probed one), prints them, and holds them until its standard input closes.
fn hold(count: usize) {
    let probe: u16 = std::env::var(HOLD_PROBE).unwrap().parse().unwrap();
    let ports: Vec<String> = (0..count).map(|_| reserve().to_string()).collect();
    let probed = if try_reserve(probe).is_some() {
        "free"
    } else {
        "taken"
    };
    println!("reserved: {} probe: {probed}", ports.join(" "));
    std::io::stdout().flush().unwrap();
    let mut rest = Vec::new();
    std::io::stdin().read_to_end(&mut rest).unwrap();
}

struct Holder {
    child: Child,
    out: BufReader<ChildStdout>,
}

impl Holder {
    fn spawn(count: usize, probe: u16) -> Holder {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "ports::tests::parallel_processes_never_share_a_port",
                "--nocapture",
            ])
            .env(HOLD_COUNT, count.to_string())
            .env(HOLD_PROBE, probe.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let out = BufReader::new(child.stdout.take().unwrap());
        Holder { child, out }
    }

    /// Reads the child's line: its ports, and whether it could reserve the probed port.
    fn reserved(&mut self) -> (Vec<u16>, String) {
        let mut line = String::new();
        loop {
            line.clear();
            assert!(
                self.out.read_line(&mut line).unwrap() > 0,
                "the holder exited without printing its ports"
            );
            if let Some(rest) = line.trim().strip_prefix("reserved: ") {
                let (ports, probe) = rest.split_once(" probe: ").unwrap();
                let ports = ports.split(' ').map(|p| p.parse().unwrap()).collect();
                return (ports, probe.to_string());
            }
        }
    }

    fn finish(mut self) {
        drop(self.child.stdin.take());
        let status = self.child.wait().unwrap();
        assert!(status.success(), "holder exited with {status}");
    }
}

#[test]
fn addr_in_use_is_recognised_in_each_implementations_words() {
    assert!(is_addr_in_use(
        "binding the HTTPS listener on 127.0.0.1:33519: Address already in use (os error 98)"
    ));
    assert!(is_addr_in_use(
        "OSError: [Errno 98] error while attempting to bind"
    ));
    assert!(!is_addr_in_use("Connection refused (os error 111)"));
}

#[test]
fn relocate_moves_only_the_port_lines() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("x.conf");
    std::fs::write(
        &conf,
        "[a]\nport = 21000\nother = 210001\nname = \"21000\"\ncomment 21000\nkeep = 1\n",
    )
    .unwrap();
    relocate(&[&conf], 21000, 21999);
    assert_eq!(
        std::fs::read_to_string(&conf).unwrap(),
        "[a]\nport = 21999\nother = 210001\nname = \"21999\"\ncomment 21000\nkeep = 1\n"
    );
}

#[test]
fn clashes_allow_starting_again_until_the_limit() {
    let mut clashes = Clashes::new("service");
    for _ in 1..START_ATTEMPTS {
        clashes.record(PortClash("Address already in use".into()));
    }
    assert_eq!(clashes.count(), START_ATTEMPTS - 1);
}

#[test]
#[should_panic(expected = "a port was taken on each of 5 starts")]
fn clashes_give_up_at_the_limit() {
    let mut clashes = Clashes::new("service");
    for _ in 0..START_ATTEMPTS {
        clashes.record(PortClash("Address already in use".into()));
    }
}
