#!/usr/bin/env bash
# Builds the kernel images and boots them in QEMU.
#   kernels/run.sh [SMP]        SMP = CPUs (default 2): kernel0 + SMP-1 secondaries
# Environment:
#   DEAD_MS (default 200)       heartbeat stall after which a node is dead
#   AP_START_MS (default 1000)  INIT-SIPI-SIPI to long-mode ack
#   HANDSHAKE_MS (default 3000) ack to the node's hello
#   CRASH_CYCLES (default 4)    crash/restart cycles
#   QEMU_TIMEOUT (seconds, default 120), QEMU_ACCEL (default tcg,thread=multi),
#   QEMU_EXTRA (extra arguments), QEMU_LOG (console log file, default
#   target/qemu-smpN.log), EXPECT_APIC (XApic or X2Apic: fail unless
#   kernel0 reports that local APIC mode).
# The boot module is a bundle of two builds of the secondary (`secondary`,
# then the newer `secondary-next` that restarted nodes run).
# Exit status: 0 when kernel0 reported every check passed (QEMU status 33)
# and the console shows every summary line; 1 otherwise.
set -euo pipefail
cd "$(dirname "$0")"
smp="${1:-2}"
cargo build --release
out=target/x86_64-unknown-none/release
log="${QEMU_LOG:-$PWD/target/qemu-smp$smp.log}"

# Little-endian integers for the bundle header (bootparse::bundle).
le() { # VALUE BYTES
    local v=$1 i
    for ((i = 0; i < $2; i++)); do
        printf "\\x$(printf %02x $(((v >> (8 * i)) & 255)))"
    done
}
bundle="$out/secondary.bundle"
images=("$out/secondary" "$out/secondary-next")
{
    printf 'MKIMGBN1'
    le ${#images[@]} 4
    le 0 4
    off=$((16 + 16 * ${#images[@]}))
    for im in "${images[@]}"; do
        size=$(stat -c %s "$im")
        le "$off" 8
        le "$size" 8
        off=$((off + size))
    done
    cat "${images[@]}"
} >"$bundle"

cmdline="dead_ms=${DEAD_MS:-200} ap_start_ms=${AP_START_MS:-1000} handshake_ms=${HANDSHAKE_MS:-3000} crash_cycles=${CRASH_CYCLES:-4}"
echo "run.sh: $smp CPUs, kernel0 command line: $cmdline"
status=0
start=$(date +%s%N)
timeout --foreground -k 5 "${QEMU_TIMEOUT:-120}" \
    qemu-system-x86_64 -M q35 -smp "$smp" -m 512M \
    -bios /usr/share/qemu/qboot.rom \
    -kernel "$out/kernel0" -initrd "$bundle" -append "$cmdline" \
    -device isa-debug-exit,iobase=0xf4,iosize=0x04 \
    -serial stdio -display none -no-reboot -monitor none \
    -accel "${QEMU_ACCEL:-tcg,thread=multi}" ${QEMU_EXTRA:-} | tee "$log" || status=${PIPESTATUS[0]}
elapsed_ms=$((($(date +%s%N) - start) / 1000000))
echo "run.sh: QEMU ran ${elapsed_ms} ms (boot to exit), log in $log"
case "$status" in
    33) ;;
    35) echo "run.sh: FAIL: a check failed (QEMU status 35)"; exit 1 ;;
    37) echo "run.sh: FAIL: kernel0 panicked (QEMU status 37)"; exit 1 ;;
    39) echo "run.sh: FAIL: CPU exception in kernel0 (QEMU status 39)"; exit 1 ;;
    124|137) echo "run.sh: FAIL: timed out"; exit 1 ;;
    *) echo "run.sh: FAIL: QEMU status $status"; exit 1 ;;
esac
missing=()
for key in kernels handshake traffic latency recovery; do
    grep -q "^$key: " "$log" || missing+=("$key:")
done
if ((${#missing[@]})); then
    echo "run.sh: FAIL: summary line(s) missing from the console: ${missing[*]}"
    exit 1
fi
# What the handshake line must say: the core manifest and handshake were
# used, every secondary connected, and restarts reconnected under new epochs.
handshake=$(grep -m1 '^handshake: ' "$log")
secondaries=$((smp - 1))
expect=("core manifest + handshake" "through mkipc::handshake"
    "$secondaries of $secondaries nodes connected at boot" "negotiated features:"
    "Watchdog on every node's heartbeat")
expect+=("${CRASH_CYCLES:-4} restart(s) reclaimed both rings and reconnected under new epochs")
for want in "${expect[@]}"; do
    if [[ "$handshake" != *"$want"* ]]; then
        echo "run.sh: FAIL: the handshake: line does not say \"$want\""
        exit 1
    fi
done
# EXPECT_APIC=X2Apic (or XApic): the kernels: line must name that mode.
if [[ -n "${EXPECT_APIC:-}" ]] && ! grep -q "^kernels: .*local APIC ${EXPECT_APIC};" "$log"; then
    echo "run.sh: FAIL: the kernels: line does not report local APIC ${EXPECT_APIC}"
    exit 1
fi
echo "run.sh: PASS (QEMU status 33, summary complete)"
