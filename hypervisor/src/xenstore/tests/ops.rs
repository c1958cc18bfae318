use alloc::vec;

use drivers::xenstore::wire::{self, Access, Permission};
use hypercalls::abi::io::xs_wire::*;

use super::*;
use crate::xenstore::Limits;

#[test]
fn a_new_store_has_the_standard_domain_keys() {
    let mut xs = store();
    assert_eq!(read(&mut xs, "name").unwrap(), b"guest-one");
    assert_eq!(read(&mut xs, "domid").unwrap(), b"3");
    assert_eq!(read(&mut xs, &format!("{HOME}/console/type")).unwrap(), b"xenconsoled");
    assert_eq!(read(&mut xs, "control/platform-feature-xs_reset_watches").unwrap(), b"1");
    assert_eq!(read(&mut xs, "console/ring-ref").unwrap_err(), "ENOENT");
    xs.set_console(0x1234, 2).unwrap();
    xs.set_store(0x1235, 1).unwrap();
    assert_eq!(read(&mut xs, "console/ring-ref").unwrap(), b"4660");
    assert_eq!(read(&mut xs, "console/port").unwrap(), b"2");
    assert_eq!(read(&mut xs, "store/ring-ref").unwrap(), b"4661");
    assert_eq!(read(&mut xs, "store/port").unwrap(), b"1");
    let home = directory(&mut xs, 0, HOME).unwrap();
    for key in ["name", "domid", "console", "store", "control", "data", "device"] {
        assert!(home.iter().any(|k| k == key), "{key} missing from {home:?}");
    }
}

#[test]
fn get_domain_path_names_any_domain() {
    let mut xs = store();
    assert_eq!(call(&mut xs, XS_GET_DOMAIN_PATH, 0, b"3\0").unwrap(), b"/local/domain/3\0");
    assert_eq!(call(&mut xs, XS_GET_DOMAIN_PATH, 0, b"0\0").unwrap(), b"/local/domain/0\0");
    assert_eq!(call(&mut xs, XS_GET_DOMAIN_PATH, 0, b"x\0").unwrap_err(), "EINVAL");
    assert_eq!(call(&mut xs, XS_GET_DOMAIN_PATH, 0, b"70000\0").unwrap_err(), "EINVAL");
}

#[test]
fn writes_create_parents_and_reads_see_them() {
    let mut xs = store();
    write(&mut xs, "data/a/b/c", b"deep").unwrap();
    assert_eq!(read(&mut xs, "data/a/b/c").unwrap(), b"deep");
    assert_eq!(read(&mut xs, &format!("{HOME}/data/a/b/c")).unwrap(), b"deep");
    assert_eq!(read(&mut xs, "data/a/b").unwrap(), b"", "intermediate nodes are empty");
    write(&mut xs, "data/a/b/c", b"").unwrap();
    assert_eq!(read(&mut xs, "data/a/b/c").unwrap(), b"");
    // Values are binary.
    write(&mut xs, "data/bin", b"\0\x01\xff").unwrap();
    assert_eq!(read(&mut xs, "data/bin").unwrap(), b"\0\x01\xff");
}

#[test]
fn directory_lists_direct_children_only() {
    let mut xs = store();
    write(&mut xs, "data/z", b"").unwrap();
    write(&mut xs, "data/a/inner", b"").unwrap();
    write(&mut xs, "data/a-b", b"").unwrap();
    assert_eq!(directory(&mut xs, 0, "data").unwrap(), vec!["a", "a-b", "z"]);
    assert_eq!(directory(&mut xs, 0, "data/z").unwrap(), Vec::<String>::new());
    assert_eq!(directory(&mut xs, 0, "data/none").unwrap_err(), "ENOENT");
}

#[test]
fn mkdir_creates_once_and_keeps_existing_values() {
    let mut xs = store();
    assert_eq!(call(&mut xs, XS_MKDIR, 0, &arg("data/dir/sub")).unwrap(), b"OK\0");
    assert_eq!(read(&mut xs, "data/dir/sub").unwrap(), b"");
    write(&mut xs, "data/dir", b"kept").unwrap();
    call(&mut xs, XS_MKDIR, 0, &arg("data/dir")).unwrap();
    assert_eq!(read(&mut xs, "data/dir").unwrap(), b"kept");
}

#[test]
fn rm_removes_whole_subtrees() {
    let mut xs = store();
    write(&mut xs, "data/t/a/x", b"1").unwrap();
    write(&mut xs, "data/t/b", b"2").unwrap();
    let before = xs.node_count();
    assert_eq!(call(&mut xs, XS_RM, 0, &arg("data/t")).unwrap(), b"OK\0");
    assert_eq!(xs.node_count(), before - 4);
    for gone in ["data/t", "data/t/a", "data/t/a/x", "data/t/b"] {
        assert_eq!(read(&mut xs, gone).unwrap_err(), "ENOENT", "{gone}");
    }
    // Missing node with an existing parent: fine. Missing parent: ENOENT.
    assert_eq!(call(&mut xs, XS_RM, 0, &arg("data/t")).unwrap(), b"OK\0");
    assert_eq!(call(&mut xs, XS_RM, 0, &arg("data/t/a")).unwrap_err(), "ENOENT");
    assert_eq!(call(&mut xs, XS_RM, 0, &arg("/")).unwrap_err(), "EINVAL");
}

#[test]
fn the_guest_reads_its_home_but_writes_only_its_own_subtrees() {
    let mut xs = store();
    assert_eq!(write(&mut xs, "name", b"evil").unwrap_err(), "EACCES");
    assert_eq!(write(&mut xs, "newkey", b"x").unwrap_err(), "EACCES");
    assert_eq!(call(&mut xs, XS_RM, 0, &arg("domid")).unwrap_err(), "EACCES");
    assert_eq!(call(&mut xs, XS_MKDIR, 0, &arg("store/extra")).unwrap_err(), "EACCES");
    write(&mut xs, "control/shutdown", b"").unwrap();
    write(&mut xs, "device/vif/0/state", b"1").unwrap();
    assert_eq!(read(&mut xs, "name").unwrap(), b"guest-one");
}

#[test]
fn nodes_outside_the_home_are_hidden_including_their_absence() {
    let mut xs = store();
    xs.write_as_dom0("/tool/secret", b"s").unwrap();
    assert_eq!(read(&mut xs, "/tool/secret").unwrap_err(), "EACCES");
    assert_eq!(read(&mut xs, "/local/domain").unwrap_err(), "EACCES");
    assert_eq!(directory(&mut xs, 0, "/").unwrap_err(), "EACCES");
    // Whether a node exists is only revealed to who may read its parent.
    assert_eq!(read(&mut xs, "/tool/missing").unwrap_err(), "EACCES");
    assert_eq!(read(&mut xs, "data/missing").unwrap_err(), "ENOENT");
    assert_eq!(write(&mut xs, "/tool/new", b"x").unwrap_err(), "EACCES");
    assert_eq!(xs.read_as_dom0("/tool/secret").unwrap(), b"s");
}

#[test]
fn permissions_are_reported_and_changed_by_their_owner() {
    let mut xs = store();
    let perms = call(&mut xs, XS_GET_PERMS, 0, &arg("name")).unwrap();
    assert_eq!(perms, b"n0\0r3\0");
    write(&mut xs, "data/mine", b"v").unwrap();
    assert_eq!(call(&mut xs, XS_GET_PERMS, 0, &arg("data/mine")).unwrap(), b"n3\0r0\0", "creator owns it");
    let share = [&b"data/mine"[..], b"n3", b"r7"];
    assert_eq!(call(&mut xs, XS_SET_PERMS, 0, &wire::nul_terminated(&share)).unwrap(), b"OK\0");
    assert_eq!(call(&mut xs, XS_GET_PERMS, 0, &arg("data/mine")).unwrap(), b"n3\0r7\0");
    let give_away = [&b"data/mine"[..], b"n0"];
    assert_eq!(call(&mut xs, XS_SET_PERMS, 0, &wire::nul_terminated(&give_away)).unwrap_err(), "EPERM");
    let not_mine = [&b"name"[..], b"b3"];
    assert_eq!(call(&mut xs, XS_SET_PERMS, 0, &wire::nul_terminated(&not_mine)).unwrap_err(), "EACCES");
    let garbage = [&b"data/mine"[..], b"q3"];
    assert_eq!(call(&mut xs, XS_SET_PERMS, 0, &wire::nul_terminated(&garbage)).unwrap_err(), "EINVAL");
    assert_eq!(call(&mut xs, XS_SET_PERMS, 0, &arg("data/mine")).unwrap_err(), "EINVAL");
    let too_many = [&b"data/mine"[..], b"n3", b"r1", b"r2", b"r4", b"r5", b"r6"];
    assert_eq!(call(&mut xs, XS_SET_PERMS, 0, &wire::nul_terminated(&too_many)).unwrap_err(), "ENOSPC");
}

#[test]
fn dom0_may_hand_a_node_to_the_guest() {
    let mut xs = store();
    xs.write_as_dom0("/shared", b"x").unwrap();
    assert_eq!(read(&mut xs, "/shared").unwrap_err(), "EACCES");
    xs.set_perms_as_dom0("/shared", vec![Permission::new(GUEST, Access::None)]).unwrap();
    write(&mut xs, "/shared", b"guest").unwrap();
    assert_eq!(xs.read_as_dom0("/shared").unwrap(), b"guest");
    xs.rm_as_dom0("/shared").unwrap();
    assert_eq!(xs.directory_as_dom0("/").unwrap(), vec!["local"]);
}

#[test]
fn quotas_are_enforced_with_xenstoreds_errors() {
    let limits =
        Limits { max_nodes: 40, max_value_len: 16, max_watches: 2, max_transactions: 1, max_perms: 5 };
    let mut xs = Xenstore::with_limits(GUEST, "small", limits);
    assert_eq!(write(&mut xs, "data/v", &[b'x'; 17]).unwrap_err(), "ENOSPC");
    write(&mut xs, "data/v", &[b'x'; 16]).unwrap();
    let mut created = 0;
    let error = loop {
        match write(&mut xs, &format!("data/n{created}"), b"") {
            Ok(()) => created += 1,
            Err(error) => break error,
        }
    };
    assert_eq!(error, "ENOSPC");
    assert_eq!(xs.node_count(), 40);
    assert!(created > 0);
    // A write that needs several new nodes is refused as a whole.
    call(&mut xs, XS_RM, 0, &arg("data/n0")).unwrap();
    assert_eq!(write(&mut xs, "data/deep/er", b"").unwrap_err(), "ENOSPC");
    assert_eq!(read(&mut xs, "data/deep").unwrap_err(), "ENOENT");
    assert_eq!(reply_of(&watch(&mut xs, "data", "1"), XS_WATCH).unwrap(), b"OK\0");
    assert_eq!(reply_of(&watch(&mut xs, "data", "2"), XS_WATCH).unwrap(), b"OK\0");
    assert_eq!(reply_of(&watch(&mut xs, "data", "3"), XS_WATCH).unwrap_err(), "E2BIG");
    tx_start(&mut xs);
    assert_eq!(call(&mut xs, XS_TRANSACTION_START, 0, b"\0").unwrap_err(), "ENOSPC");
}

#[test]
fn directory_part_pages_through_long_child_lists() {
    let mut xs = store();
    let names: Vec<String> = (0..300).map(|i| format!("child-with-a-long-name-{i:04}")).collect();
    for name in &names {
        xs.write_as_dom0(&format!("data/big/{name}"), b"").unwrap();
    }
    let mut collected = Vec::new();
    let mut offset = 0usize;
    let mut generation = None;
    loop {
        let mut payload = arg("data/big");
        payload.extend(arg(&offset.to_string()));
        let reply = call(&mut xs, XS_DIRECTORY_PART, 0, &payload).unwrap();
        assert!(reply.len() <= XENSTORE_PAYLOAD_MAX);
        let strings = wire::split_strings(&reply).unwrap();
        let (gen, rest) = strings.split_first().unwrap();
        assert_eq!(*generation.get_or_insert(gen.to_vec()), gen.to_vec(), "stable while unchanged");
        let finished = rest.last() == Some(&&b""[..]);
        let page: Vec<String> = rest.iter().filter(|s| !s.is_empty()).map(|s| text(s)).collect();
        offset += page.iter().map(|s| s.len() + 1).sum::<usize>();
        collected.extend(page);
        if finished {
            break;
        }
    }
    assert_eq!(collected, names);
    assert!(call(&mut xs, XS_DIRECTORY, 0, &arg("data/big")).is_err_and(|e| e == "E2BIG"));
}

#[test]
fn toolstack_only_and_unknown_operations_are_refused() {
    let mut xs = store();
    for privileged in [XS_INTRODUCE, XS_RELEASE, XS_RESUME, XS_SET_TARGET, XS_CONTROL] {
        assert_eq!(call(&mut xs, privileged, 0, b"1\0").unwrap_err(), "EACCES", "type {privileged}");
    }
    for invalid in [XS_ERROR, XS_WATCH_EVENT, 20, XS_TYPE_COUNT, XS_INVALID, u32::MAX] {
        let messages = exchange(&mut xs, invalid, 0, b"x\0");
        assert_eq!(messages.len(), 1);
        assert_eq!(messages[0].header.r#type, XS_ERROR, "type {invalid}");
        assert_eq!(messages[0].payload, b"ENOSYS\0");
    }
    assert_eq!(call(&mut xs, XS_IS_DOMAIN_INTRODUCED, 0, b"3\0").unwrap(), b"T\0");
    assert_eq!(call(&mut xs, XS_IS_DOMAIN_INTRODUCED, 0, b"9\0").unwrap(), b"F\0");
}
