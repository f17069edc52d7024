#!/usr/bin/env bash
# Builds the kernel images and boots them in QEMU.
#   kernels/run.sh [SMP]        SMP = CPUs (default 2): kernel0 + SMP-1 secondaries
# Environment: QEMU_TIMEOUT (seconds, default 120), QEMU_ACCEL (default
# tcg,thread=multi), QEMU_EXTRA (extra arguments).
# Exit status: 0 when kernel0 reported every check passed (QEMU status 33),
# 1 otherwise.
set -euo pipefail
cd "$(dirname "$0")"
smp="${1:-2}"
cargo build --release
out=target/x86_64-unknown-none/release
status=0
timeout --foreground -k 5 "${QEMU_TIMEOUT:-120}" \
    qemu-system-x86_64 -M q35 -smp "$smp" -m 512M \
    -bios /usr/share/qemu/qboot.rom \
    -kernel "$out/kernel0" -initrd "$out/secondary" \
    -device isa-debug-exit,iobase=0xf4,iosize=0x04 \
    -serial stdio -display none -no-reboot -monitor none \
    -accel "${QEMU_ACCEL:-tcg,thread=multi}" ${QEMU_EXTRA:-} || status=$?
case "$status" in
    33) echo "run.sh: PASS (QEMU status 33)"; exit 0 ;;
    35) echo "run.sh: FAIL: a check failed (QEMU status 35)" ;;
    37) echo "run.sh: FAIL: kernel0 panicked (QEMU status 37)" ;;
    39) echo "run.sh: FAIL: CPU exception in kernel0 (QEMU status 39)" ;;
    124|137) echo "run.sh: FAIL: timed out" ;;
    *) echo "run.sh: FAIL: QEMU status $status" ;;
esac
exit 1
