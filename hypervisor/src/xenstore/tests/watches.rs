use alloc::vec;

use hypercalls::abi::io::xs_wire::*;

use super::*;

fn pair(path: &str, token: &str) -> (String, String) {
    (path.into(), token.into())
}

#[test]
fn a_new_watch_fires_once_right_after_its_reply() {
    let mut xs = store();
    let messages = watch(&mut xs, "data", "tok");
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0].header.r#type, XS_WATCH);
    assert_eq!(messages[0].payload, b"OK\0");
    assert_eq!(messages[1].event(), pair("data", "tok"));
    assert_eq!((messages[1].header.req_id, messages[1].header.tx_id), (0, 0));
    assert_eq!(xs.watch_count(), 1);
}

#[test]
fn changes_below_a_watch_fire_it_with_the_changed_path() {
    let mut xs = store();
    watch(&mut xs, &format!("{HOME}/data"), "abs");
    let messages = exchange(&mut xs, XS_WRITE, 0, &write_payload("data/x/y", b"1"));
    assert!(messages[0].is_event(), "events precede the reply");
    assert_eq!(events(&messages), vec![pair(&format!("{HOME}/data/x/y"), "abs")]);
    assert_eq!(reply_of(&messages, XS_WRITE).unwrap(), b"OK\0");
    // A sibling with a common prefix is not below the watch.
    write(&mut xs, "data-not", b"").unwrap_err();
    xs.write_as_dom0(&format!("{HOME}/datax"), b"").unwrap();
    assert!(split_stream(&xs.take_pending_output()).is_empty());
}

#[test]
fn relative_watches_report_relative_paths() {
    let mut xs = store();
    assert_eq!(events(&watch(&mut xs, "device", "rel")), vec![pair("device", "rel")]);
    let messages = exchange(&mut xs, XS_MKDIR, 0, &arg("device/vbd"));
    assert_eq!(events(&messages), vec![pair("device/vbd", "rel")]);
}

#[test]
fn removing_a_parent_fires_watches_on_removed_descendants() {
    let mut xs = store();
    write(&mut xs, "data/p/c/g", b"").unwrap();
    watch(&mut xs, "data/p/c/g", "grandchild");
    watch(&mut xs, "data/p/other", "never-existed");
    watch(&mut xs, "data", "ancestor");
    let messages = exchange(&mut xs, XS_RM, 0, &arg("data/p"));
    let mut fired = events(&messages);
    fired.sort();
    assert_eq!(fired, vec![pair("data/p", "ancestor"), pair("data/p/c/g", "grandchild")]);
}

#[test]
fn rm_of_a_missing_node_and_mkdir_of_an_existing_one_fire_nothing() {
    let mut xs = store();
    write(&mut xs, "data/d", b"").unwrap();
    watch(&mut xs, "data", "t");
    assert!(events(&exchange(&mut xs, XS_RM, 0, &arg("data/nothing"))).is_empty());
    assert!(events(&exchange(&mut xs, XS_MKDIR, 0, &arg("data/d"))).is_empty());
    assert_eq!(events(&exchange(&mut xs, XS_SET_PERMS, 0, b"data/d\0n3\0")), vec![pair("data/d", "t")]);
}

#[test]
fn duplicate_watches_and_unknown_unwatches_are_errors() {
    let mut xs = store();
    watch(&mut xs, "data", "t");
    assert_eq!(reply_of(&watch(&mut xs, "data", "t"), XS_WATCH).unwrap_err(), "EEXIST");
    // Same path, other token: a separate watch; both fire.
    watch(&mut xs, "data", "u");
    let fired = events(&exchange(&mut xs, XS_WRITE, 0, &write_payload("data/k", b"")));
    assert_eq!(fired, vec![pair("data/k", "t"), pair("data/k", "u")]);
    assert_eq!(call(&mut xs, XS_UNWATCH, 0, b"data\0t\0").unwrap(), b"OK\0");
    assert_eq!(call(&mut xs, XS_UNWATCH, 0, b"data\0t\0").unwrap_err(), "ENOENT");
    let fired = events(&exchange(&mut xs, XS_WRITE, 0, &write_payload("data/k", b"")));
    assert_eq!(fired, vec![pair("data/k", "u")]);
    assert_eq!(call(&mut xs, XS_RESET_WATCHES, 0, b"\0").unwrap(), b"OK\0");
    assert_eq!(xs.watch_count(), 0);
    assert!(events(&exchange(&mut xs, XS_WRITE, 0, &write_payload("data/k", b""))).is_empty());
}

#[test]
fn dom0_changes_queue_events_for_readable_nodes_only() {
    let mut xs = store();
    watch(&mut xs, "/", "everything");
    xs.set_console(77, 5).unwrap();
    let fired: Vec<_> = split_stream(&xs.take_pending_output()).iter().map(Msg::event).collect();
    assert_eq!(
        fired,
        vec![
            pair(&format!("{HOME}/console/ring-ref"), "everything"),
            pair(&format!("{HOME}/console/port"), "everything")
        ]
    );
    xs.write_as_dom0("/tool/private", b"x").unwrap();
    assert!(xs.take_pending_output().is_empty(), "the guest cannot read /tool/private");
}

#[test]
fn special_watches_are_accepted() {
    let mut xs = store();
    let messages = watch(&mut xs, "@releaseDomain", "rel");
    assert_eq!(events(&messages), vec![pair("@releaseDomain", "rel")]);
    assert_eq!(reply_of(&watch(&mut xs, "@bad name", "x"), XS_WATCH).unwrap_err(), "EINVAL");
    assert!(events(&exchange(&mut xs, XS_WRITE, 0, &write_payload("data/k", b""))).is_empty());
}

#[test]
fn malformed_watch_requests_are_einval() {
    let mut xs = store();
    for bad in [&b"data\0"[..], b"data\0tok", b"", b"bad//path\0t\0"] {
        assert_eq!(call(&mut xs, XS_WATCH, 0, bad).unwrap_err(), "EINVAL", "{bad:?}");
    }
    // Extra strings after the token are ignored, as xenstored does.
    assert_eq!(call(&mut xs, XS_WATCH, 0, b"data\0tok\0\0").unwrap(), b"OK\0");
}

#[test]
fn reset_connection_forgets_watches_and_transactions_but_not_the_tree() {
    let mut xs = store();
    write(&mut xs, "data/kept", b"1").unwrap();
    watch(&mut xs, "data", "t");
    let tx = tx_start(&mut xs);
    xs.reset_connection();
    assert_eq!((xs.watch_count(), xs.transaction_count()), (0, 0));
    assert_eq!(tx_end(&mut xs, tx, true).unwrap_err(), "ENOENT");
    assert_eq!(read(&mut xs, "data/kept").unwrap(), b"1");
    assert!(events(&exchange(&mut xs, XS_WRITE, 0, &write_payload("data/kept", b"2"))).is_empty());
}
