use super::*;
use core::sync::atomic::Ordering;

fn page() -> Box<SharedInfoView> {
    Box::new(SharedInfoView::new())
}

fn collect(shared: &SharedInfoView, vcpu: &VcpuInfoView) -> Vec<EvtchnPort> {
    let mut ports = Vec::new();
    let count = pending_ports(shared, vcpu, |port| ports.push(port));
    assert_eq!(count, ports.len());
    ports
}

#[test]
fn first_event_needs_an_upcall_and_sets_every_level() {
    let shared = page();
    let vcpu = &shared.vcpu_info[0];
    assert_eq!(set_pending(&shared, vcpu, 70), Ok(true));
    assert_eq!(shared.evtchn_pending[1].load(Ordering::Relaxed), 1 << 6);
    assert_eq!(vcpu.evtchn_pending_sel.load(Ordering::Relaxed), 1 << 1);
    assert_eq!(vcpu.evtchn_upcall_pending.load(Ordering::Relaxed), 1);
}

#[test]
fn repeated_or_coalesced_events_need_no_second_upcall() {
    let shared = page();
    let vcpu = &shared.vcpu_info[0];
    assert_eq!(set_pending(&shared, vcpu, 3), Ok(true));
    assert_eq!(set_pending(&shared, vcpu, 3), Ok(false), "already pending");
    assert_eq!(set_pending(&shared, vcpu, 200), Ok(false), "upcall already pending");
    assert_eq!(vcpu.evtchn_pending_sel.load(Ordering::Relaxed), (1 << 0) | (1 << 3));
    assert_eq!(collect(&shared, vcpu), vec![3, 200]);
}

#[test]
fn a_masked_port_is_marked_pending_but_raises_nothing() {
    let shared = page();
    let vcpu = &shared.vcpu_info[0];
    mask(&shared, 9).unwrap();
    assert_eq!(set_pending(&shared, vcpu, 9), Ok(false));
    assert_eq!(is_pending(&shared, 9), Ok(true));
    assert_eq!(vcpu.evtchn_pending_sel.load(Ordering::Relaxed), 0);
    assert_eq!(vcpu.evtchn_upcall_pending.load(Ordering::Relaxed), 0);
}

#[test]
fn hypervisor_unmask_re_raises_a_pending_port() {
    let shared = page();
    let vcpu = &shared.vcpu_info[0];
    mask(&shared, 130).unwrap();
    set_pending(&shared, vcpu, 130).unwrap();
    assert_eq!(unmask(&shared, vcpu, 130), Ok(true));
    assert_eq!(is_masked(&shared, 130), Ok(false));
    assert_eq!(collect(&shared, vcpu), vec![130]);
    // Unmasking a port that is not pending (or not masked) raises nothing.
    assert_eq!(unmask(&shared, vcpu, 130), Ok(false));
    mask(&shared, 131).unwrap();
    assert_eq!(unmask(&shared, vcpu, 131), Ok(false));
    assert_eq!(vcpu.evtchn_upcall_pending.load(Ordering::Relaxed), 0);
}

#[test]
fn the_guest_scan_clears_what_it_handles_and_skips_masked_ports() {
    let shared = page();
    let vcpu = &shared.vcpu_info[0];
    mask(&shared, 65).unwrap();
    for port in [1, 64, 65, 4095] {
        set_pending(&shared, vcpu, port).unwrap();
    }
    assert_eq!(collect(&shared, vcpu), vec![1, 64, 4095]);
    assert_eq!(vcpu.evtchn_upcall_pending.load(Ordering::Relaxed), 0);
    assert_eq!(vcpu.evtchn_pending_sel.load(Ordering::Relaxed), 0);
    assert_eq!(is_pending(&shared, 1), Ok(false));
    assert_eq!(is_pending(&shared, 65), Ok(true), "masked port stays pending");
    assert!(collect(&shared, vcpu).is_empty());
}

#[test]
fn unmask_local_reports_an_event_that_arrived_while_masked() {
    let shared = page();
    let vcpu = &shared.vcpu_info[0];
    mask(&shared, 300).unwrap();
    set_pending(&shared, vcpu, 300).unwrap();
    assert!(collect(&shared, vcpu).is_empty());
    assert_eq!(unmask_local(&shared, vcpu, 300), Ok(true));
    assert_eq!(collect(&shared, vcpu), vec![300]);
    assert_eq!(unmask_local(&shared, vcpu, 300), Ok(false), "nothing pending any more");
}

#[test]
fn events_arriving_during_the_scan_are_handled_in_the_same_call() {
    let shared = page();
    let vcpu = &shared.vcpu_info[0];
    set_pending(&shared, vcpu, 5).unwrap();
    let mut seen = Vec::new();
    pending_ports(&shared, vcpu, |port| {
        seen.push(port);
        let first_time = seen.iter().filter(|&&p| p == port).count() == 1;
        match port {
            // Same word, already scanned position; another word; and the
            // port being handled itself (its bit was cleared first).
            5 if first_time => {
                set_pending(&shared, vcpu, 2).unwrap();
                set_pending(&shared, vcpu, 1000).unwrap();
                set_pending(&shared, vcpu, 5).unwrap();
            }
            1000 => {
                set_pending(&shared, vcpu, 7).unwrap();
            }
            _ => {}
        }
    });
    seen.sort_unstable();
    assert_eq!(seen, vec![2, 5, 5, 7, 1000]);
    assert!(shared.evtchn_pending.iter().all(|w| w.load(Ordering::Relaxed) == 0));
}

#[test]
fn out_of_range_ports_are_errors_everywhere() {
    let shared = page();
    let vcpu = &shared.vcpu_info[0];
    let bad = PortOutOfRange(NR_PORTS);
    assert_eq!(set_pending(&shared, vcpu, NR_PORTS), Err(bad));
    assert_eq!(unmask(&shared, vcpu, NR_PORTS), Err(bad));
    assert_eq!(mask(&shared, NR_PORTS), Err(bad));
    assert_eq!(unmask_local(&shared, vcpu, NR_PORTS), Err(bad));
    assert_eq!(clear_pending(&shared, u32::MAX), Err(PortOutOfRange(u32::MAX)));
    assert_eq!(is_pending(&shared, NR_PORTS), Err(bad));
    assert_eq!(is_masked(&shared, NR_PORTS), Err(bad));
}

#[test]
fn events_go_to_the_vcpu_they_are_bound_to() {
    let shared = page();
    set_pending(&shared, &shared.vcpu_info[1], 12).unwrap();
    assert!(collect(&shared, &shared.vcpu_info[0]).is_empty());
    assert_eq!(collect(&shared, &shared.vcpu_info[1]), vec![12]);
}

/// Xen and the guest race on real threads; the hypervisor re-fires a port
/// only once the guest has cleared it, so every firing must be handled
/// exactly once and none may be lost.
#[test]
fn no_event_is_lost_when_both_sides_run_concurrently() {
    use std::sync::atomic::AtomicBool;
    use std::time::{Duration, Instant};

    const ROUNDS: usize = 300;
    let ports: Vec<EvtchnPort> = vec![0, 1, 63, 64, 127, 1000, 4095];
    let shared = page();
    let vcpu = &shared.vcpu_info[0];
    let done = AtomicBool::new(false);
    let mut counts = vec![0usize; NR_PORTS as usize];
    std::thread::scope(|scope| {
        let producer = scope.spawn(|| {
            for _ in 0..ROUNDS {
                for &port in &ports {
                    let deadline = Instant::now() + Duration::from_secs(20);
                    while is_pending(&shared, port).unwrap() {
                        assert!(Instant::now() < deadline, "guest never consumed port {port}");
                        std::thread::yield_now();
                    }
                    set_pending(&shared, vcpu, port).unwrap();
                }
            }
            done.store(true, Ordering::SeqCst);
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let expected = ROUNDS * ports.len();
        let mut total = 0;
        while total < expected {
            assert!(Instant::now() < deadline, "only {total} of {expected} events arrived");
            // A real guest would sleep until the upcall; polling the flag
            // the hypervisor raises is the same thing here.
            if vcpu.evtchn_upcall_pending.load(Ordering::SeqCst) == 0 && !done.load(Ordering::SeqCst) {
                std::thread::yield_now();
                continue;
            }
            total += pending_ports(&shared, vcpu, |port| counts[port as usize] += 1);
        }
        producer.join().unwrap();
    });
    for &port in &ports {
        assert_eq!(counts[port as usize], ROUNDS, "port {port}");
    }
    assert_eq!(counts.iter().sum::<usize>(), ROUNDS * ports.len());
}
