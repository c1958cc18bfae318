#!/bin/busybox sh
# PID 1 of the nested harness's L1 VM (`cargo xtask run --on qemu-xen`).
#
# L0 hands over the guest ELF as the raw virtio disk, and through QEMU's
# fw_cfg its exact size and L2's QEMU arguments (one per line), so nothing
# about a run is baked into this cached initramfs. L2's serial console is
# this VM's console, which is L0's stdout. L2's exit status leaves through
# this VM's own isa-debug-exit device, so L0, and xtask, end with the status
# the guest chose.

fw=/sys/firmware/qemu_fw_cfg/by_name/opt/rust-xen

say() {
    echo "qemu-xen-harness: $*"
}

# The byte to write to L1's isa-debug-exit so that L0 exits with status $1.
# QEMU exits with (byte << 1) | 1, so odd statuses below 128 (the guest's
# verdicts, and QEMU's own error status 1) pass through exactly. Anything
# else, such as 128+N after a signal, becomes 1: "no verdict".
debug_exit_byte() {
    if [ $(($1 % 2)) -eq 1 ] && [ "$1" -lt 128 ]; then
        echo $(($1 / 2))
    else
        echo 0
    fi
}

# Ends L1 so that L0 exits with status $1 (0: a plain power-off).
finish() {
    if [ "$1" -ne 0 ]; then
        printf "\\$(printf %o "$(debug_exit_byte "$1")")" | dd of=/dev/port bs=1 seek=244 count=1 2>/dev/null
    fi
    echo o > /proc/sysrq-trigger
    sleep 60
}

fail() {
    say "ERROR: $*"
    finish 1
}

main() {
    /bin/busybox mkdir -p /bin /proc /sys /dev /tmp
    /bin/busybox --install -s /bin
    export PATH=/bin:/usr/bin
    mount -t proc proc /proc
    mount -t sysfs sysfs /sys
    mount -t devtmpfs devtmpfs /dev 2>/dev/null
    # The guest writes its own CR LF; the console must not add another CR.
    stty -onlcr 2>/dev/null
    for module in /modules/*.ko; do
        insmod "$module" || fail "cannot load ${module#/modules/}"
    done
    [ -c /dev/kvm ] || fail "no /dev/kvm after loading KVM (does L0's CPU model offer SVM?)"
    size=$(cat "$fw/guest-size/raw") || fail "no guest size in fw_cfg"
    head -c "$size" /dev/vda > /tmp/guest.elf || fail "cannot copy the guest from /dev/vda"
    set --
    while IFS= read -r arg; do
        set -- "$@" "$arg"
    done < "$fw/l2-args/raw"
    qemu-system-x86_64 "$@" < /dev/null
    status=$?
    say "L2 QEMU exited with status $status"
    finish "$status"
}

# Only as PID 1: the host-side tests source this file for its functions.
if [ "$$" -eq 1 ]; then
    main
fi
