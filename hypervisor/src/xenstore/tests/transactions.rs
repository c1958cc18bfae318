use alloc::vec;

use hypercalls::abi::io::xs_wire::*;

use super::*;

#[test]
fn writes_are_private_until_commit() {
    let mut xs = store();
    let tx = tx_start(&mut xs);
    write_in(&mut xs, tx, "data/t/k", b"v").unwrap();
    assert_eq!(read_in(&mut xs, tx, "data/t/k").unwrap(), b"v");
    assert_eq!(read(&mut xs, "data/t/k").unwrap_err(), "ENOENT");
    assert_eq!(directory(&mut xs, tx, "data").unwrap(), vec!["t"]);
    assert!(directory(&mut xs, 0, "data").unwrap().is_empty());
    tx_end(&mut xs, tx, true).unwrap();
    assert_eq!(read(&mut xs, "data/t/k").unwrap(), b"v");
    assert_eq!(xs.transaction_count(), 0);
}

#[test]
fn abort_discards_everything() {
    let mut xs = store();
    write(&mut xs, "data/keep", b"old").unwrap();
    let tx = tx_start(&mut xs);
    write_in(&mut xs, tx, "data/keep", b"new").unwrap();
    call(&mut xs, XS_RM, tx, &arg("data/keep")).unwrap();
    assert_eq!(read_in(&mut xs, tx, "data/keep").unwrap_err(), "ENOENT");
    tx_end(&mut xs, tx, false).unwrap();
    assert_eq!(read(&mut xs, "data/keep").unwrap(), b"old");
    assert_eq!(tx_end(&mut xs, tx, true).unwrap_err(), "ENOENT", "the id is gone");
}

#[test]
fn watches_fire_at_commit_not_before() {
    let mut xs = store();
    watch(&mut xs, "data", "w");
    let tx = tx_start(&mut xs);
    assert!(events(&exchange(&mut xs, XS_WRITE, tx, &write_payload("data/a", b"1"))).is_empty());
    let messages = exchange(&mut xs, XS_TRANSACTION_END, tx, b"T\0");
    assert_eq!(events(&messages), vec![("data/a".into(), "w".into())]);
    assert_eq!(reply_of(&messages, XS_TRANSACTION_END).unwrap(), b"OK\0");
    assert_eq!(messages.last().unwrap().header.tx_id, tx, "the reply echoes the transaction id");
    let tx = tx_start(&mut xs);
    write_in(&mut xs, tx, "data/b", b"1").unwrap();
    assert!(events(&exchange(&mut xs, XS_TRANSACTION_END, tx, b"F\0")).is_empty());
}

#[test]
fn a_conflicting_change_makes_commit_fail_with_eagain() {
    let mut xs = store();
    write(&mut xs, "data/counter", b"1").unwrap();
    let tx = tx_start(&mut xs);
    assert_eq!(read_in(&mut xs, tx, "data/counter").unwrap(), b"1");
    write_in(&mut xs, tx, "data/counter", b"2").unwrap();
    write(&mut xs, "data/counter", b"5").unwrap();
    assert_eq!(tx_end(&mut xs, tx, true).unwrap_err(), "EAGAIN");
    assert_eq!(read(&mut xs, "data/counter").unwrap(), b"5", "nothing from the failed transaction");
    assert_eq!(xs.transaction_count(), 0);
}

#[test]
fn unrelated_changes_do_not_conflict() {
    let mut xs = store();
    write(&mut xs, "data/mine", b"1").unwrap();
    write(&mut xs, "data/other", b"1").unwrap();
    let tx = tx_start(&mut xs);
    write_in(&mut xs, tx, "data/mine", b"2").unwrap();
    write(&mut xs, "data/other", b"2").unwrap();
    tx_end(&mut xs, tx, true).unwrap();
    assert_eq!(read(&mut xs, "data/mine").unwrap(), b"2");
    assert_eq!(read(&mut xs, "data/other").unwrap(), b"2");
}

#[test]
fn creating_the_same_node_in_two_places_conflicts() {
    let mut xs = store();
    let tx = tx_start(&mut xs);
    write_in(&mut xs, tx, "data/new", b"tx").unwrap();
    write(&mut xs, "data/new", b"outside").unwrap();
    assert_eq!(tx_end(&mut xs, tx, true).unwrap_err(), "EAGAIN");
    assert_eq!(read(&mut xs, "data/new").unwrap(), b"outside");
}

#[test]
fn a_listing_conflicts_with_a_new_child() {
    let mut xs = store();
    let tx = tx_start(&mut xs);
    assert!(directory(&mut xs, tx, "data").unwrap().is_empty());
    write_in(&mut xs, tx, "data/summary", b"0 children").unwrap();
    write(&mut xs, "data/late", b"").unwrap();
    assert_eq!(tx_end(&mut xs, tx, true).unwrap_err(), "EAGAIN");
}

#[test]
fn rm_inside_a_transaction_hides_and_then_removes_the_subtree() {
    let mut xs = store();
    write(&mut xs, "data/tree/a", b"").unwrap();
    write(&mut xs, "data/tree/b/c", b"").unwrap();
    let nodes = xs.node_count();
    let tx = tx_start(&mut xs);
    call(&mut xs, XS_RM, tx, &arg("data/tree")).unwrap();
    assert_eq!(directory(&mut xs, tx, "data").unwrap(), Vec::<String>::new());
    assert_eq!(read_in(&mut xs, tx, "data/tree/b/c").unwrap_err(), "ENOENT");
    assert_eq!(directory(&mut xs, 0, "data").unwrap(), vec!["tree"]);
    tx_end(&mut xs, tx, true).unwrap();
    assert_eq!(xs.node_count(), nodes - 4);
}

#[test]
fn transaction_ids_are_checked() {
    let mut xs = store();
    assert_eq!(read_in(&mut xs, 999, "data").unwrap_err(), "ENOENT");
    assert_eq!(write_in(&mut xs, 999, "data/x", b"").unwrap_err(), "ENOENT");
    assert_eq!(tx_end(&mut xs, 0, true).unwrap_err(), "ENOENT");
    let tx = tx_start(&mut xs);
    assert_eq!(call(&mut xs, XS_TRANSACTION_START, tx, b"\0").unwrap_err(), "EBUSY");
    assert_eq!(call(&mut xs, XS_TRANSACTION_END, tx, b"X\0").unwrap_err(), "EINVAL");
    assert_eq!(call(&mut xs, XS_TRANSACTION_END, tx, b"T").unwrap_err(), "EINVAL");
    assert_eq!(xs.transaction_count(), 1, "a malformed end leaves it open");
    let second = tx_start(&mut xs);
    assert_ne!(second, tx);
}

#[test]
fn permissions_apply_inside_transactions() {
    let mut xs = store();
    let tx = tx_start(&mut xs);
    assert_eq!(write_in(&mut xs, tx, "name", b"evil").unwrap_err(), "EACCES");
    assert_eq!(read_in(&mut xs, tx, "/tool/x").unwrap_err(), "EACCES");
    tx_end(&mut xs, tx, true).unwrap();
    assert_eq!(read(&mut xs, "name").unwrap(), b"guest-one");
}
