//! The client library (`agent-client`) against real agents: events resumed across `kill -9`
//! of agentd with every event once, creates keyed by name (also when the reply was lost
//! to a crash), typed errors, concurrent creates.

use agent_client::{Client, ContainerSpec, Error, EventsOptions, Resources, Target};
use e2e::{eventually, privileged, Agent};
use futures::StreamExt;
use std::collections::HashSet;
use std::time::{Duration, Instant};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime")
}

fn client(rt: &tokio::runtime::Runtime, a: &Agent) -> Client {
    rt.block_on(Client::connect(&Target { host: a.host.clone(), tls: None })).expect("connect")
}

fn spec(name: &str, cmd: &[&str]) -> ContainerSpec {
    ContainerSpec {
        name: name.into(),
        image: "local/busybox:latest".into(),
        command: cmd.iter().map(|s| s.to_string()).collect(),
        network_mode: "none".into(),
        ..Default::default()
    }
}

/// The sequence numbers of the whole event log as it is now.
fn log_seqs(rt: &tokio::runtime::Runtime, c: &Client) -> Vec<u64> {
    rt.block_on(async {
        let s = c.events(EventsOptions { since: 0, follow: false, filters: vec![] });
        s.map(|e| e.expect("event").seq).collect().await
    })
}

/// Follows the event log from `since` in the background; events arrive on the channel.
fn follow(rt: &tokio::runtime::Runtime, c: &Client, since: u64) -> std::sync::mpsc::Receiver<agent_client::Event> {
    let (tx, rx) = std::sync::mpsc::channel();
    let mut s = c.events(EventsOptions { since, follow: true, filters: vec![] });
    rt.spawn(async move {
        while let Some(e) = s.next().await {
            match e {
                Ok(e) => {
                    if tx.send(e).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    eprintln!("event stream ended: {e}");
                    return;
                }
            }
        }
    });
    rx
}

/// Drains `rx` until what it delivered equals the log after `since` (or 30 s pass).
fn received_until_log(
    rt: &tokio::runtime::Runtime,
    c: &Client,
    rx: &std::sync::mpsc::Receiver<agent_client::Event>,
    since: u64,
) -> (Vec<agent_client::Event>, Vec<u64>) {
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        while let Ok(e) = rx.recv_timeout(Duration::from_millis(200)) {
            got.push(e);
        }
        let want: Vec<u64> = log_seqs(rt, c).into_iter().filter(|s| *s > since).collect();
        let seqs: Vec<u64> = got.iter().map(|e| e.seq).collect();
        if seqs == want || Instant::now() > deadline {
            return (got, want);
        }
    }
}

fn assert_each_once(got: &[agent_client::Event], want: &[u64], since: u64) {
    let seqs: Vec<u64> = got.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, want, "every event of the log once, in order");
    let contiguous: Vec<u64> = (since + 1..=since + want.len() as u64).collect();
    assert_eq!(seqs, contiguous, "sequence numbers unique and contiguous");
}

#[test]
fn event_stream_resumes_across_kill_9_with_each_event_once() {
    if !privileged("event_stream_resumes_across_kill_9_with_each_event_once") {
        return;
    }
    let mut a = Agent::start("clev");
    let rt = runtime();
    let c = client(&rt, &a);
    let rx = follow(&rt, &c, 0);
    a.ok(&["create", "--name", "ev1", "--network", "none", "local/busybox", "sleep", "300"]);
    a.ok(&["start", "ev1"]);
    a.crash_and_restart();
    // While the stream reconnects: these come from the log (since), not live.
    a.ok(&["stop", "-t", "0", "ev1"]);
    a.ok(&["create", "--name", "ev2", "--network", "none", "local/busybox", "true"]);
    a.crash_and_restart();
    a.ok(&["rm", "ev1", "ev2"]);
    a.ok(&["run", "-d", "--name", "ev3", "--network", "none", "local/busybox", "sleep", "300"]);
    a.crash_and_restart_after(Duration::from_millis(500));
    a.ok(&["rm", "-f", "ev3"]);
    let (got, want) = received_until_log(&rt, &c, &rx, 0);
    assert_each_once(&got, &want, 0);
    for (name, action) in [("ev1", "start"), ("ev1", "die"), ("ev2", "create"), ("ev2", "destroy"), ("ev3", "destroy")]
    {
        assert!(
            got.iter().any(|e| e.name == name && e.action == action),
            "{name} {action} missing: {:?}",
            got.iter().map(|e| format!("{} {} {}", e.seq, e.name, e.action)).collect::<Vec<_>>()
        );
    }
    drop(rt);
    a.stop();
    a.assert_no_leftovers();
}

#[test]
fn creates_are_keyed_by_name_and_errors_are_typed() {
    if !privileged("creates_are_keyed_by_name_and_errors_are_typed") {
        return;
    }
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) as f64;
    let mut a = Agent::start_with_config("clkey", &format!("[capacity]\nreserved_cpus = {}\n", cpus - 0.5));
    let rt = runtime();
    let c = client(&rt, &a);
    rt.block_on(async {
        let s = spec("key1", &["sleep", "300"]);
        let first = c.create(s.clone()).await.expect("create");
        assert!(!first.existed);
        // The same create again, as after a lost reply: the same container.
        let again = c.create(s.clone()).await.expect("create again");
        assert_eq!((again.id.as_str(), again.existed), (first.id.as_str(), true));
        // Another spec under that name: AlreadyExists.
        match c.create(spec("key1", &["sleep", "301"])).await {
            Err(Error::AlreadyExists(m)) => assert!(m.contains("key1") && m.contains("another spec"), "{m}"),
            r => panic!("want AlreadyExists, got {r:?}"),
        }
        let listed = c.list(true).await.expect("list");
        assert_eq!(listed.len(), 1, "{listed:?}");
        assert_eq!(listed[0].id, first.id);

        match c.inspect("nosuch").await {
            Err(Error::NotFound(m)) => assert!(m.contains("nosuch"), "{m}"),
            r => panic!("want NotFound, got {r:?}"),
        }
        assert!(matches!(c.start("nosuch").await, Err(Error::NotFound(_))));
        let mut bad = spec("key2", &["true"]);
        bad.resources = Some(Resources { memory: 1024, ..Default::default() });
        match c.create(bad).await {
            Err(Error::InvalidArgument(m)) => assert!(m.contains("1024"), "the value is named: {m}"),
            r => panic!("want InvalidArgument, got {r:?}"),
        }
        // The node has 0.5 allocatable CPUs: a container of 1.5 is short by 1 — exactly,
        // from the status details, not the message's two decimals.
        let mut big = spec("key3", &["true"]);
        big.resources = Some(Resources { cpus: 1.5, ..Default::default() });
        match c.create(big).await {
            Err(Error::ResourceExhausted { shortfall: Some(s), message }) => {
                assert_eq!(s.cpus, Some(1.0), "{message}");
                assert_eq!(s.memory, None, "{message}");
                assert!(message.ends_with("short by 1.00 CPUs"), "the text is kept: {message}");
            }
            r => panic!("want ResourceExhausted with a shortfall, got {r:?}"),
        }
        assert_eq!(c.list(true).await.expect("list").len(), 1, "refused creates leave nothing");
        c.remove(&first.id, true).await.expect("rm");
        assert!(c.remove(&first.id, true).await.is_ok(), "a forced remove is idempotent");
        assert!(
            matches!(c.remove(&first.id, false).await, Err(Error::NotFound(_))),
            "a first attempt's NotFound is told"
        );
    });
    // A container of that name made by someone else (no spec hash): AlreadyExists.
    a.ok(&["create", "--name", "key4", "--network", "none", "local/busybox", "sleep", "300"]);
    let r = rt.block_on(c.create(spec("key4", &["sleep", "300"])));
    assert!(matches!(r, Err(Error::AlreadyExists(_))), "{r:?}");
    a.ok(&["rm", "key4"]);
    drop(rt);
    a.stop();
    a.assert_no_leftovers();
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| s.rsplit(')').next().is_some_and(|rest| !rest.trim_start().starts_with('Z')))
}

/// A create whose reply never came (agentd aborts right after recording it): the library's
/// retry, once the agent is back, returns that container; there is one of that name.
#[test]
fn a_create_whose_reply_was_lost_returns_its_container() {
    if !privileged("a_create_whose_reply_was_lost_returns_its_container") {
        return;
    }
    let mut a = Agent::start("cllost");
    a.env = vec![("AGENTD_CRASH_AT".into(), "create.after_record".into())];
    a.crash_and_restart();
    let rt = runtime();
    let c = client(&rt, &a);
    let c2 = c.clone();
    let pending = rt.spawn(async move { c2.create(spec("lost1", &["sleep", "300"])).await });
    let pid = a.pid().expect("agentd pid");
    assert!(eventually(20, || !alive(pid)), "agentd did not abort at create.after_record: {}", a.log());
    a.env.clear();
    a.crash_and_restart();
    let created = rt.block_on(pending).expect("join").expect("the retried create");
    assert!(created.existed, "the retry found the container its first attempt made: {created:?}");
    let all = rt.block_on(c.list(true)).expect("list");
    let named: Vec<_> = all.iter().filter(|x| x.name == "lost1").collect();
    assert_eq!(named.len(), 1, "{all:?}");
    assert_eq!(named[0].id, created.id);
    rt.block_on(c.start(&created.id)).expect("start");
    rt.block_on(c.remove(&created.id, true)).expect("rm");
    drop(rt);
    a.stop();
    a.assert_no_leftovers();
}

#[test]
fn ten_concurrent_creates_get_unique_ids_and_events() {
    if !privileged("ten_concurrent_creates_get_unique_ids_and_events") {
        return;
    }
    let mut a = Agent::start("clconc");
    let rt = runtime();
    let c = client(&rt, &a);
    let since = log_seqs(&rt, &c).last().copied().unwrap_or(0);
    let rx = follow(&rt, &c, since);
    let names: Vec<String> = (0..10).map(|i| format!("conc{i}")).collect();
    let made = rt.block_on(futures::future::join_all(names.iter().map(|n| c.create(spec(n, &["sleep", "300"])))));
    let ids: Vec<String> = made.into_iter().map(|r| r.expect("create").id).collect();
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 10, "{ids:?}");
    // Again, all at once: the same containers.
    let again = rt.block_on(futures::future::join_all(names.iter().map(|n| c.create(spec(n, &["sleep", "300"])))));
    let again: Vec<String> = again.into_iter().map(|r| r.expect("create again").id).collect();
    assert_eq!(again, ids);
    let started = rt.block_on(futures::future::join_all(ids.iter().map(|id| c.start(id))));
    assert!(started.iter().all(Result::is_ok), "{started:?}");
    let removed = rt.block_on(futures::future::join_all(ids.iter().map(|id| c.remove(id, true))));
    assert!(removed.iter().all(Result::is_ok), "{removed:?}");
    let (got, want) = received_until_log(&rt, &c, &rx, since);
    assert_each_once(&got, &want, since);
    for action in ["create", "start", "destroy"] {
        assert_eq!(got.iter().filter(|e| e.action == action).count(), 10, "{action}");
    }
    drop(rt);
    a.stop();
    a.assert_no_leftovers();
}
