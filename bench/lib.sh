# bench/lib.sh: what the boot benchmarks share. Source it after setting $work (a temp dir),
# $runs (how many runs) and $bench (the script's name, for messages).

# run NAME CMD...: prints "WALL CPU" (seconds) of the best-wall run of $runs; fails if the guest's
# userspace never printed bench-userspace-ok. CPU (user+sys) is printed too because a shared host's
# wall time includes waiting for a core, CPU time does not.
run() {
    local name=$1 best="" bestcpu="" t
    shift
    for _ in $(seq "$runs"); do
        local TIMEFORMAT="%R %U %S"
        if ! t=$( { time timeout 600 "$@" </dev/null >"$work/$name.log" 2>&1; } 2>&1 ); then
            echo "$bench: $name failed; last output:" >&2
            tail -5 "$work/$name.log" >&2
            return 1
        fi
        grep -aq bench-userspace-ok "$work/$name.log" || { echo "$bench: $name: userspace did not run" >&2; return 1; }
        local wall cpu
        wall=$(echo "$t" | awk '{print $1}')
        cpu=$(echo "$t" | awk '{print $2 + $3}')
        if [ -z "$best" ] || [ "$(echo "$wall < $best" | bc -l)" = 1 ]; then best=$wall; bestcpu=$cpu; fi
    done
    echo "$best $bestcpu"
}
