# Sourced by the proof scripts once OUT and SELFALIGN are set: starts OUT/timings.tsv and defines
# `step NAME selfalign-arguments...`, which echoes the command, runs it and appends its wall time
# with the 1-minute load average before and after (timings under load are noise: say so).
# HEAVY_LOCK=FILE runs each step under `flock FILE`, one step at a time, so that other heavy jobs
# on a shared machine can pass between steps; the time waited for the lock is written apart.
mkdir -p "$OUT"
# KEEP_TIMINGS=1 appends to an existing table (a script rerunning some of its steps).
if [[ ${KEEP_TIMINGS:-0} != 1 || ! -s $OUT/timings.tsv ]]; then
    printf 'step\tseconds\tload_before\tload_after\tlock_wait_s\n' > "$OUT/timings.tsv"
fi
load1() { cut -d' ' -f1 /proc/loadavg; }
step() {
    local name=$1; shift
    echo; echo "== $name"; echo "+ selfalign $*"
    local asked=$SECONDS
    if [[ -n ${HEAVY_LOCK:-} ]]; then exec 9>"$HEAVY_LOCK"; flock 9; fi
    local began=$SECONDS before
    before=$(load1)
    local status=0
    "$SELFALIGN" "$@" || status=$?
    printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$((SECONDS - began))" "$before" "$(load1)" \
        "$((began - asked))" >> "$OUT/timings.tsv"
    if [[ -n ${HEAVY_LOCK:-} ]]; then flock -u 9; exec 9>&-; fi
    return $status
}
