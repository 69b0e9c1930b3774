# Sourced by the proof scripts once OUT and SELFALIGN are set: starts OUT/timings.tsv and defines
# `step NAME selfalign-arguments...`, which echoes the command, runs it and appends its wall time.
mkdir -p "$OUT"
printf 'step\tseconds\n' > "$OUT/timings.tsv"
step() {
    local name=$1; shift
    echo; echo "== $name"; echo "+ selfalign $*"
    local began=$SECONDS
    "$SELFALIGN" "$@"
    printf '%s\t%s\n' "$name" "$((SECONDS - began))" >> "$OUT/timings.tsv"
}
