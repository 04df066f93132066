//! Clients that pile up and clients that abuse HTTP/2 (the load part of the fault suite):
//! a thousand followers over many connections, followers that never read, a follower past
//! `[limits] max_followers`, connections past `max_connections`, huge metadata, and a reset
//! flood. agentd's RSS is measured before, during and after; `ps` must answer throughout.
//! Each test prints its row of the suite's table (`e2e::tally`). Root only.

use agent_proto::v1 as pb;
use e2e::h2raw;
use e2e::tally::{rss_kib, Tally};
use e2e::{eventually, privileged, Agent};
use std::time::{Duration, Instant};

const IMG: &str = "local/busybox:latest";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime")
}

fn socket(a: &Agent) -> String {
    a.host.trim_start_matches("unix://").to_string()
}

/// `ps` through agentctl: whether it answered, and how long it took.
fn timed_ps(a: &Agent) -> (bool, Duration) {
    let t0 = Instant::now();
    let r = a.ctl(&["ps"]);
    (r.code == 0, t0.elapsed())
}

/// A gauge of agentd's `/metrics` at `port` (-1 when it cannot be read).
fn gauge(port: u16, name: &str) -> i64 {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else { return -1 };
    let _ = s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    let mut body = String::new();
    let _ = s.read_to_string(&mut body);
    body.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(-1)
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// What a test holds open: the channels and every follower's stream.
struct Held {
    _channels: Vec<tonic::transport::Channel>,
    logs: Vec<tonic::Streaming<pb::LogEntry>>,
    events: Vec<tonic::Streaming<pb::Event>>,
}

/// `per` `logs -f` of `id` and `per` `events` followers on each of `conns` connections.
async fn open_followers(host: &str, id: &str, conns: usize, per: usize) -> Result<Held, String> {
    let mut h = Held { _channels: Vec::new(), logs: Vec::new(), events: Vec::new() };
    for c in 0..conns {
        let ch = agent_proto::connect(host).await.map_err(|e| format!("connection {c}: {e}"))?;
        let mut cs = pb::container_service_client::ContainerServiceClient::new(ch.clone());
        let mut ss = pb::system_service_client::SystemServiceClient::new(ch.clone());
        for i in 0..per {
            let l = cs.logs(pb::LogsRequest { id: id.into(), follow: true, ..Default::default() }).await;
            h.logs.push(l.map_err(|e| format!("logs -f {c}/{i}: {e}"))?.into_inner());
            let e = ss.events(pb::EventsRequest { since: 0, follow: true, ..Default::default() }).await;
            h.events.push(e.map_err(|e| format!("events {c}/{i}: {e}"))?.into_inner());
        }
        h._channels.push(ch);
    }
    Ok(h)
}

/// How many followers see `ping` in the log and the `die` of `blip` (each within `secs`).
async fn followers_that_hear(h: &mut Held, secs: u64) -> (usize, usize) {
    let d = Duration::from_secs(secs);
    let logs = futures::future::join_all(h.logs.iter_mut().map(|s| async move {
        tokio::time::timeout(d, async {
            while let Ok(Some(e)) = s.message().await {
                if String::from_utf8_lossy(&e.data).contains("ping") {
                    return true;
                }
            }
            false
        })
        .await
        .unwrap_or(false)
    }));
    let events = futures::future::join_all(h.events.iter_mut().map(|s| async move {
        tokio::time::timeout(d, async {
            while let Ok(Some(e)) = s.message().await {
                if e.name == "blip" && e.action == "die" {
                    return true;
                }
            }
            false
        })
        .await
        .unwrap_or(false)
    }));
    let (l, e) = futures::future::join(logs, events).await;
    (l.into_iter().filter(|x| *x).count(), e.into_iter().filter(|x| *x).count())
}

#[test]
fn a_thousand_followers_over_many_connections_leave_the_agent_responsive_and_bounded() {
    if !privileged("a_thousand_followers") {
        return;
    }
    const TOTAL: usize = 1000;
    let mut t = Tally::new("1000 followers");
    let port = e2e::free_port();
    let a = Agent::start_with_config(
        "thousand",
        &format!("metrics_listen = \"127.0.0.1:{port}\"\n[limits]\nmax_followers = 1000\n"),
    );
    let id = a.ok(&[
        "run",
        "-d",
        "--name",
        "quiet",
        IMG,
        "sh",
        "-c",
        "trap 'echo ping' USR1; while true; do sleep 0.1; done",
    ]);
    let pid = a.pid().expect("agentd pid");
    let rt = runtime();
    let base = rss_kib(pid);
    let mut afters = Vec::new();
    // Twice over 10 connections (50 `logs -f` and 50 `events` each), then once as 500
    // clients of their own (one of each per connection).
    for (round, conns) in [(1, 10), (2, 10), (3, 500)] {
        let per = TOTAL / 2 / conns;
        let t0 = Instant::now();
        let held = rt.block_on(open_followers(&a.host, &id, conns, per));
        let opened = t0.elapsed();
        t.faults += 1;
        let mut held = match held {
            Ok(h) => h,
            Err(e) => {
                t.check(false, || format!("round {round}: opening {TOTAL} followers: {e}"));
                break;
            }
        };
        std::thread::sleep(Duration::from_secs(1));
        let during = rss_kib(pid);
        let (f, c) = (gauge(port, "agentd_followers"), gauge(port, "agentd_client_connections"));
        t.check(f == TOTAL as i64 && c == conns as i64, || {
            format!("round {round}: /metrics says {f} followers on {c} connections")
        });
        // One more is refused, by name; calls that do not follow are not.
        let extra = rt.block_on(async {
            let ch = agent_proto::connect(&a.host).await.map_err(|e| e.to_string())?;
            let mut ss = pb::system_service_client::SystemServiceClient::new(ch);
            match ss.events(pb::EventsRequest { since: 0, follow: true, ..Default::default() }).await {
                Ok(_) => Err("admitted".to_string()),
                Err(s) => Ok(s),
            }
        });
        t.check(
            extra.as_ref().is_ok_and(|s| {
                s.code() == tonic::Code::ResourceExhausted && s.message().contains("[limits] max_followers = 1000")
            }),
            || format!("round {round}: follower {}: {extra:?}", TOTAL + 1),
        );
        let r = a.ctl(&["logs", "quiet"]);
        t.check(r.code == 0, || format!("round {round}: logs without -f: {}", r.stderr));
        let (ok, took) = timed_ps(&a);
        t.check(ok, || format!("round {round}: ps with {TOTAL} followers failed"));
        // Every follower still follows: a log line and an event reach all of them.
        a.ok(&["kill", "-s", "USR1", "quiet"]);
        // Detached: an attached run is a follower too, and the budget is spent.
        a.ok(&["run", "-d", "--rm", "--name", "blip", IMG, "true"]);
        let t1 = Instant::now();
        let (l, e) = rt.block_on(followers_that_hear(&mut held, 60));
        let heard = t1.elapsed();
        t.check(l == TOTAL / 2 && e == TOTAL / 2, || format!("round {round}: {l} logs -f and {e} events heard"));
        drop(held);
        // Their slots come back: the refused follower is admitted now.
        let back = eventually(20, || {
            rt.block_on(async {
                let Ok(ch) = agent_proto::connect(&a.host).await else { return false };
                let mut ss = pb::system_service_client::SystemServiceClient::new(ch);
                ss.events(pb::EventsRequest { since: 0, follow: true, ..Default::default() }).await.is_ok()
            })
        });
        t.check(back, || format!("round {round}: no follower admitted after {TOTAL} left"));
        // Every slot, task and connection is given back, not only reusable.
        let gone =
            eventually(20, || gauge(port, "agentd_followers") == 0 && gauge(port, "agentd_client_connections") == 0);
        t.check(gone, || {
            format!(
                "round {round}: after they left /metrics says {} followers on {} connections",
                gauge(port, "agentd_followers"),
                gauge(port, "agentd_client_connections")
            )
        });
        std::thread::sleep(Duration::from_secs(3));
        let after = rss_kib(pid);
        println!(
            "round {round}: {TOTAL} followers over {conns} connections opened in {opened:?}; agentd RSS {:.1} MiB before, \
             {:.1} MiB with them, {:.1} MiB after they left; ps took {took:?}; all heard a line and an event in {heard:?}",
            mib(base),
            mib(during),
            mib(after)
        );
        t.check(during.saturating_sub(base) < 200 * 1024, || {
            format!("round {round}: agentd grew {:.1} MiB with {TOTAL} followers", mib(during - base))
        });
        afters.push(after);
    }
    // Nothing stays per follower: a second thousand leaves the agent where the first did.
    if let [first, second, _] = afters[..] {
        t.check(second <= first + 32 * 1024, || {
            format!("agentd kept {:.1} MiB more after the second round", mib(second.saturating_sub(first)))
        });
    }
    a.ok(&["rm", "-f", "quiet"]);
    a.assert_no_leftovers();
    t.finish();
}

#[test]
fn followers_that_pile_up_and_never_read_keep_the_agent_bounded_and_responsive() {
    if !privileged("followers_that_pile_up") {
        return;
    }
    use agent_proto::v1 as pb;
    const FOLLOWERS: usize = 300;
    let mut t = Tally::new("slow followers");
    let a = Agent::start("followers");
    let id = a.ok(&["run", "-d", "--name", "chatty", IMG, "sh", "-c", "read x < /dev/stdin; sleep 1000"]);
    // Floods 3000 lines of 16 KB once the followers are there (SIGUSR1).
    let flood = "head -c 16000 /dev/zero | tr '\\0' x > /l; trap 'i=0; while [ $i -lt 3000 ]; do cat /l; echo; i=$((i+1)); done' USR1; while true; do sleep 0.1; done";
    let id2 = a.ok(&["run", "-d", "--name", "flood", IMG, "sh", "-c", flood]);
    let pid = a.pid().expect("agentd pid");
    let before = rss_kib(pid);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let streams = rt.block_on(async {
        let ch = agent_proto::connect(&a.host).await.expect("connect");
        let mut held = Vec::new();
        for i in 0..FOLLOWERS {
            let mut cs = pb::container_service_client::ContainerServiceClient::new(ch.clone());
            let mut ss = pb::system_service_client::SystemServiceClient::new(ch.clone());
            let logs = cs.logs(pb::LogsRequest { id: id2.clone(), follow: true, ..Default::default() }).await;
            let ev = ss.events(pb::EventsRequest { since: 0, follow: true, ..Default::default() }).await;
            // And one caught up with a quiet container: it waits for more.
            let quiet = cs.logs(pb::LogsRequest { id: id.clone(), follow: true, ..Default::default() }).await;
            match (logs, ev, quiet) {
                (Ok(l), Ok(e), Ok(q)) => held.push((l.into_inner(), e.into_inner(), q.into_inner())),
                (l, e, q) => panic!("follower {i}: {:?} {:?} {:?}", l.err(), e.err(), q.err()),
            }
        }
        held
    });
    t.faults += 1;
    a.ok(&["kill", "-s", "USR1", "flood"]);
    // The flood is written while nobody reads.
    let log = a.root().join("containers").join(&id2).join("log");
    t.check(eventually(60, || std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0) > 3000 * 16000), || {
        "the flood was not written".into()
    });
    std::thread::sleep(Duration::from_secs(2));
    let during = rss_kib(pid);
    let cpu = |pid: u32| -> u64 {
        let st = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let f: Vec<&str> = st.rsplit(')').next().unwrap_or("").split_whitespace().collect();
        f.get(11).and_then(|u| u.parse::<u64>().ok()).unwrap_or(0)
            + f.get(12).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0)
    };
    let c0 = cpu(pid);
    std::thread::sleep(Duration::from_secs(2));
    let idle_ticks = cpu(pid) - c0;
    println!("agentd CPU with {FOLLOWERS} caught-up followers waiting: {idle_ticks} ticks (1/100 s) in 2 s");
    // Polling every 10 ms, they took ~43 ticks (a fifth of a core); inotify wakes them.
    t.check(idle_ticks < 20, || format!("{FOLLOWERS} waiting followers took {idle_ticks} ticks in 2 s"));
    let t0 = Instant::now();
    let r = a.ctl(&["ps"]);
    let took = t0.elapsed();
    t.check(r.code == 0 && took < Duration::from_secs(5), || format!("ps took {took:?}: {}", r.stderr));
    println!("agentd RSS: {before} KiB before, {during} KiB with {FOLLOWERS} stalled logs -f, {FOLLOWERS} events and {FOLLOWERS} caught-up logs -f followers");
    t.check(during.saturating_sub(before) < 160 * 1024, || {
        format!("agentd grew by {} MiB with {FOLLOWERS} stalled followers", (during - before) / 1024)
    });
    drop(streams);
    drop(rt);
    for n in ["chatty", "flood"] {
        a.ok(&["rm", "-f", n]);
    }
    a.assert_no_leftovers();
    t.finish();
}

#[test]
fn a_client_that_opens_its_windows_and_never_reads_costs_the_agent_bounded_memory() {
    if !privileged("a_client_that_never_reads") {
        return;
    }
    const BYTES: u64 = 300 << 20;
    let mut t = Tally::new("reader that never reads");
    let a = Agent::start("neverread");
    // 300 MiB of output as fast as the shim takes it, once told (USR1).
    let flood = "trap 'yes 0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz | head -c 314572800' USR1; while true; do sleep 0.1; done";
    let id = a.ok(&["run", "-d", "--name", "fast", IMG, "sh", "-c", flood]);
    let pid = a.pid().expect("agentd pid");
    let base = rss_kib(pid);
    // Ten raw connections, each with 2 GiB windows (the agent may send that much before
    // we read) and a `logs -f`, then never a byte read from the socket.
    let mut socks = Vec::new();
    for _ in 0..10 {
        let mut s = h2raw::connect(&socket(&a), Some((1 << 31) - 1)).expect("connect");
        let mut req = h2raw::headers(1, &h2raw::request_block("/agent.v1.ContainerService/Logs", &[]), false);
        req.extend(h2raw::grpc_data(1, &h2raw::logs_request(&id, true)));
        std::io::Write::write_all(&mut s, &req).expect("request");
        socks.push(s);
    }
    a.ok(&["kill", "-s", "USR1", "fast"]);
    t.faults += 10;
    let log = a.root().join("containers").join(&id).join("log");
    let t0 = Instant::now();
    let mut peak = base;
    while t0.elapsed() < Duration::from_secs(90) && std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0) < BYTES {
        peak = peak.max(rss_kib(pid));
        std::thread::sleep(Duration::from_millis(250));
    }
    let wrote = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
    let took = t0.elapsed();
    t.check(wrote >= BYTES, || format!("the container wrote {wrote} bytes in {took:?}: blocked by its readers?"));
    std::thread::sleep(Duration::from_secs(1));
    peak = peak.max(rss_kib(pid));
    let (ok, ps) = timed_ps(&a);
    t.check(ok, || "ps while 10 readers never read".into());
    println!(
        "never-reading clients: the container logged {} MiB in {took:?}; agentd RSS {:.1} MiB before, peak {:.1} MiB; ps took {ps:?}",
        wrote >> 20,
        mib(base),
        mib(peak)
    );
    t.check(peak.saturating_sub(base) < 64 * 1024, || {
        format!("agentd grew {:.1} MiB for 10 clients that never read", mib(peak - base))
    });
    // Still a follower, not dropped: reading now gets the output.
    let (frames, _) = h2raw::read_frames(&mut socks[0], Duration::from_secs(2), 64);
    let data = frames.iter().filter(|f| f.kind == h2raw::DATA && f.stream == 1).count();
    t.check(data > 0, || {
        format!("the reader got no data once it read: {:?}", frames.iter().map(|f| f.kind).collect::<Vec<_>>())
    });
    drop(socks);
    a.ok(&["rm", "-f", "fast"]);
    a.assert_no_leftovers();
    t.finish();
}

#[test]
fn connections_past_the_limit_are_closed_and_the_served_ones_keep_working() {
    if !privileged("connections_past_the_limit") {
        return;
    }
    let mut t = Tally::new("connections past the limit");
    let a = Agent::start_with_config("connlimit", "[limits]\nmax_connections = 20\n");
    // A connection closed at accept may already refuse our preface (EPIPE).
    let conns: Vec<_> = (0..30).map(|_| h2raw::connect(&socket(&a), None)).collect();
    t.faults += 10;
    let mut served = 0;
    let mut closed = conns.iter().filter(|c| c.is_err()).count();
    let mut socks: Vec<_> = conns.into_iter().flatten().collect();
    for s in socks.iter_mut() {
        let (frames, gone) = h2raw::read_frames(s, Duration::from_millis(500), 1);
        if frames.first().is_some_and(|f| f.kind == h2raw::SETTINGS) {
            served += 1;
        } else if gone {
            closed += 1;
        }
    }
    println!("30 connections with max_connections = 20: {served} served, {closed} closed at once");
    t.check(served == 20 && closed == 10, || format!("{served} served and {closed} closed of 30"));
    let log = a.log();
    t.check(log.contains("max_connections reached"), || "the refusal is not logged".into());
    drop(socks);
    t.check(eventually(10, || timed_ps(&a).0), || "ps after the 30 connections closed".into());
    a.assert_no_leftovers();
    t.finish();
}

#[test]
fn huge_metadata_is_refused_and_the_agent_keeps_serving() {
    if !privileged("huge_metadata") {
        return;
    }
    let mut t = Tally::new("huge metadata");
    let a = Agent::start("bigmeta");
    let pid = a.pid().expect("agentd pid");
    let base = rss_kib(pid);
    let version = "/agent.v1.SystemService/Version";
    // 1 MiB of one header: the connection is closed without an answer (it is over four
    // times max_header_list_size, as h2 does).
    let big = vec![b'x'; 1 << 20];
    for _ in 0..20 {
        let mut s = h2raw::connect(&socket(&a), None).expect("connect");
        let mut req = h2raw::headers(1, &h2raw::request_block(version, &[("x-big", &big)]), false);
        req.extend(h2raw::grpc_data(1, &[]));
        let _ = std::io::Write::write_all(&mut s, &req);
        let (frames, closed) = h2raw::read_frames(&mut s, Duration::from_secs(5), 100);
        t.faults += 1;
        let answered = frames.iter().any(|f| f.kind == h2raw::DATA && f.stream == 1);
        t.check(closed && !answered, || format!("1 MiB of metadata: closed {closed}, answered {answered}"));
    }
    // 20 KiB (over the 16 KiB limit, under four times it): that call is refused (431 or
    // REFUSED_STREAM), the connection lives and serves the next call.
    let mid = vec![b'y'; 20 << 10];
    let mut s = h2raw::connect(&socket(&a), None).expect("connect");
    let mut req = h2raw::headers(1, &h2raw::request_block(version, &[("x-mid", &mid)]), false);
    req.extend(h2raw::grpc_data(1, &[]));
    req.extend(h2raw::headers(3, &h2raw::request_block(version, &[]), false));
    req.extend(h2raw::grpc_data(3, &[]));
    std::io::Write::write_all(&mut s, &req).expect("requests");
    let (frames, _) = h2raw::read_frames(&mut s, Duration::from_secs(3), 100);
    t.faults += 1;
    let first: Vec<u8> = frames.iter().filter(|f| f.stream == 1).map(|f| f.kind).collect();
    let served = frames.iter().any(|f| f.kind == h2raw::DATA && f.stream == 3 && f.payload.len() > 5);
    println!("20 KiB of metadata: frames on its stream {first:?}; the next call served: {served}");
    t.check(!first.contains(&h2raw::DATA) && !first.is_empty(), || format!("20 KiB call: frames {first:?}"));
    t.check(served, || "the call after the refused one was not served".into());
    let (ok, took) = timed_ps(&a);
    t.check(ok, || "ps after the huge metadata".into());
    let after = rss_kib(pid);
    println!(
        "agentd RSS {:.1} MiB before, {:.1} MiB after 20 MiB of refused headers; ps took {took:?}",
        mib(base),
        mib(after)
    );
    t.check(after.saturating_sub(base) < 64 * 1024, || format!("agentd grew {:.1} MiB", mib(after - base)));
    a.assert_no_leftovers();
    t.finish();
}

#[test]
fn a_reset_flood_does_not_take_the_agent_down() {
    if !privileged("a_reset_flood") {
        return;
    }
    const CONNS: u32 = 20;
    const PER: u32 = 2000;
    let mut t = Tally::new("reset flood");
    let a = Agent::start("rstflood");
    let pid = a.pid().expect("agentd pid");
    let base = rss_kib(pid);
    let sock = socket(&a);
    // The flood from another thread while `ps` is timed here.
    let flood = std::thread::spawn(move || {
        let mut sent = 0u32;
        let mut calm = 0u32;
        let mut other = Vec::new();
        for _ in 0..CONNS {
            let Ok(mut s) = h2raw::connect(&sock, None) else { continue };
            let mut reader = s.try_clone().expect("clone");
            let r = std::thread::spawn(move || h2raw::read_frames(&mut reader, Duration::from_secs(3), usize::MAX));
            let block = h2raw::request_block("/agent.v1.SystemService/Version", &[]);
            let mut batch = Vec::new();
            for i in 0..PER {
                let id = 1 + 2 * i;
                batch.extend(h2raw::headers(id, &block, true));
                batch.extend(h2raw::frame(h2raw::RST_STREAM, 0, id, &h2raw::CANCEL.to_be_bytes()));
                if batch.len() > 64 * 1024 {
                    if std::io::Write::write_all(&mut s, &batch).is_err() {
                        break;
                    }
                    batch.clear();
                }
                sent += 1;
            }
            let _ = std::io::Write::write_all(&mut s, &batch);
            let _ = s.shutdown(std::net::Shutdown::Write);
            let (frames, _) = r.join().unwrap_or_default();
            match h2raw::goaway(&frames) {
                Some(h2raw::ENHANCE_YOUR_CALM) => calm += 1,
                Some(c) => other.push(c),
                None => {}
            }
        }
        (sent, calm, other)
    });
    let mut worst = Duration::ZERO;
    let mut failed = 0;
    while !flood.is_finished() {
        let (ok, took) = timed_ps(&a);
        worst = worst.max(took);
        failed += u32::from(!ok);
        std::thread::sleep(Duration::from_millis(200));
    }
    let (sent, calm, other) = flood.join().expect("flood");
    t.faults += sent;
    let during = rss_kib(pid);
    println!(
        "reset flood: {sent} HEADERS+RST_STREAM pairs over {CONNS} connections; {calm} connections closed with \
         GOAWAY ENHANCE_YOUR_CALM, other GOAWAYs {other:?}; ps during: worst {worst:?}, {failed} failed; agentd RSS \
         {:.1} MiB before, {:.1} MiB after",
        mib(base),
        mib(during)
    );
    t.check(failed == 0, || format!("{failed} ps calls failed during the flood"));
    t.check(a.pid().is_some_and(|p| std::path::Path::new(&format!("/proc/{p}")).exists()), || "agentd died".into());
    let (ok, _) = timed_ps(&a);
    t.check(ok, || "ps after the flood".into());
    t.check(during.saturating_sub(base) < 100 * 1024, || format!("agentd grew {:.1} MiB", mib(during - base)));
    a.assert_no_leftovers();
    t.finish();
}

#[test]
fn a_client_that_never_answers_pings_is_disconnected() {
    if !privileged("a_client_that_never_answers_pings") {
        return;
    }
    let mut t = Tally::new("pings unanswered");
    let a = Agent::start_with_config("noping", "[limits]\nkeepalive_interval_secs = 1\nkeepalive_timeout_secs = 1\n");
    let mut s = h2raw::connect(&socket(&a), None).expect("connect");
    t.faults += 1;
    let t0 = Instant::now();
    let (frames, closed) = h2raw::read_frames(&mut s, Duration::from_secs(10), usize::MAX);
    let took = t0.elapsed();
    let pings = frames.iter().filter(|f| f.kind == 0x6).count();
    println!("a client that never answers pings: {pings} ping(s), closed {closed} after {took:?}");
    t.check(pings >= 1 && closed && took < Duration::from_secs(8), || {
        format!(
            "pings {pings}, closed {closed} after {took:?}: {:?}",
            frames.iter().map(|f| f.kind).collect::<Vec<_>>()
        )
    });
    // A client that answers (agentctl's) is served as before.
    t.check(timed_ps(&a).0, || "ps".into());
    a.assert_no_leftovers();
    t.finish();
}

#[test]
fn twenty_python_grpcio_processes_following_fifty_times_each_are_served() {
    if !privileged("twenty_python_grpcio_processes") {
        return;
    }
    use std::io::BufRead;
    const PROCS: usize = 20;
    const EACH: usize = 50;
    let tools = std::env::var_os("K8S_TOOLS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/k8s-tools"));
    let python = tools.join("venv/bin/python");
    if !python.exists() {
        assert!(std::env::var_os("K8S_TOOLS").is_none(), "K8S_TOOLS is set but {} is missing", python.display());
        eprintln!("SKIP: {} is missing (run ../shared/tools/k8s-tools.sh)", python.display());
        return;
    }
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("clients/followers.py");
    let proto = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../proto");
    let mut t = Tally::new("python followers");
    let a = Agent::start("pyfollow");
    let out = a.dir.path().join("py");
    std::fs::create_dir(&out).expect("stub dir");
    let g = std::process::Command::new(&python).arg(&script).arg("gen").arg(&proto).arg(&out).output().expect("gen");
    assert!(g.status.success(), "stubs: {}", String::from_utf8_lossy(&g.stderr));
    let pid = a.pid().expect("agentd pid");
    let base = rss_kib(pid);
    let t0 = Instant::now();
    let mut kids = Vec::new();
    for _ in 0..PROCS {
        let mut c = std::process::Command::new(&python)
            .arg(&script)
            .args(["follow", &out.display().to_string(), &socket(&a), &EACH.to_string(), "blip"])
            .stdout(std::process::Stdio::piped())
            .stdin(std::process::Stdio::null())
            .spawn()
            .expect("python");
        let lines = std::io::BufReader::new(c.stdout.take().expect("stdout")).lines();
        kids.push((c, lines));
    }
    t.faults += 1;
    let mut ready = 0;
    for (_, lines) in kids.iter_mut() {
        if let Some(Ok(l)) = lines.next() {
            ready += usize::from(l == format!("ready {EACH}"));
            t.check(!l.starts_with("refused"), || format!("a Python follower was refused: {l}"));
        }
    }
    let opened = t0.elapsed();
    t.check(ready == PROCS, || format!("{ready} of {PROCS} Python clients had all their followers open"));
    let during = rss_kib(pid);
    let (ok, took) = timed_ps(&a);
    t.check(ok, || "ps with the Python followers".into());
    a.ok(&["run", "-d", "--rm", "--name", "blip", IMG, "true"]);
    let mut heard = 0;
    for (mut c, mut lines) in kids {
        let l = lines.next().and_then(Result::ok).unwrap_or_default();
        heard += l.strip_prefix("heard ").and_then(|n| n.parse::<usize>().ok()).unwrap_or(0);
        let _ = c.wait();
    }
    std::thread::sleep(Duration::from_secs(2));
    let after = rss_kib(pid);
    println!(
        "{PROCS} Python grpcio processes × {EACH} events followers opened in {opened:?}; {heard} heard the event; \
         agentd RSS {:.1} MiB before, {:.1} MiB with them, {:.1} MiB after; ps took {took:?}",
        mib(base),
        mib(during),
        mib(after)
    );
    t.check(heard == PROCS * EACH, || format!("{heard} of {} followers heard the event", PROCS * EACH));
    t.check(during.saturating_sub(base) < 200 * 1024, || format!("agentd grew {:.1} MiB", mib(during - base)));
    t.check(eventually(20, || a.ctl(&["ps", "-aq"]).stdout.trim().is_empty()), || "blip was not removed".into());
    a.assert_no_leftovers();
    t.finish();
}

/// The soft and hard "Max open files" of process `pid`.
fn nofile_of(pid: u32) -> Option<(u64, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    let mut f = line.split_whitespace().skip(3);
    Some((f.next()?.parse().ok()?, f.next()?.parse().ok()?))
}

#[test]
fn an_agent_started_with_a_low_open_file_limit_serves_more_clients_and_its_containers_keep_the_old_limit() {
    if !privileged("low_open_file_limit") {
        return;
    }
    let mut t = Tally::new("nofile 1024 at start");
    let a = Agent::start_with_nofile("nofile", 1024);
    let pid = a.pid().expect("agentd pid");
    let limit = nofile_of(pid);
    let hard = limit.map(|(_, h)| h).unwrap_or(0);
    t.check(limit.is_some_and(|(s, h)| s == h && h > 1024), || format!("agentd's open-file limit: {limit:?}"));
    // Containers and exec'd processes get the limit agentd was started with.
    let r = a.ctl(&["run", "--rm", IMG, "sh", "-c", "ulimit -n"]);
    t.check(r.stdout.trim() == "1024", || format!("a container's ulimit -n: {} {}", r.stdout, r.stderr));
    let id = a.ok(&["run", "-d", IMG, "sleep", "300"]);
    let r = a.ctl(&["exec", &id, "sh", "-c", "ulimit -n"]);
    t.check(r.stdout.trim() == "1024", || format!("an exec's ulimit -n: {} {}", r.stdout, r.stderr));
    let r = a.ctl(&["run", "--rm", "--ulimit", "nofile=2048:4096", IMG, "sh", "-c", "ulimit -n"]);
    t.check(r.stdout.trim() == "2048", || format!("--ulimit nofile=2048:4096: {} {}", r.stdout, r.stderr));
    // More clients at once than the limit agentd was started with: all are served.
    const CLIENTS: usize = 1500;
    if hard > CLIENTS as u64 + 512 {
        let rt = runtime();
        let served = rt.block_on(async {
            let mut held = Vec::new();
            let mut ok = 0;
            for _ in 0..CLIENTS {
                // Bounded: an agent out of descriptors leaves a connect waiting, not failing.
                let one = async {
                    let ch = agent_proto::connect(&a.host).await.ok()?;
                    let mut ss = pb::system_service_client::SystemServiceClient::new(ch.clone());
                    ss.version(pb::VersionRequest::default()).await.ok()?;
                    Some(ch)
                };
                match tokio::time::timeout(Duration::from_secs(5), one).await {
                    Ok(Some(ch)) => {
                        ok += 1;
                        held.push(ch);
                    }
                    _ => break,
                }
            }
            ok
        });
        t.faults += 1;
        t.check(served == CLIENTS, || format!("{served} of {CLIENTS} connections held at once were served"));
        let (ok, took) = timed_ps(&a);
        t.check(ok, || "ps after the clients".into());
        println!(
            "{served} of {CLIENTS} clients served at once by an agent started with 1024 open files; ps took {took:?}"
        );
    } else {
        println!("skipped the {CLIENTS} clients: the hard open-file limit is {hard}");
    }
    a.ok(&["rm", "-f", &id]);
    a.assert_no_leftovers();
    t.finish();
}
