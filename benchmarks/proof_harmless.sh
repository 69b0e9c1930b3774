#!/usr/bin/env bash
# The constitution proved harmless and not evasive, without a judge: does training on selfalign's
# data under constitution/harmless.yaml make the embedded model decline harmful requests it never
# saw, without declining harmless ones that only sound risky?
#
#   benchmarks/proof_harmless.sh [OUT]
#
# The training prompts come from benchmarks/data/harmless/ (each folder's SOURCE.md says where
# from and under which licence): AdvBench requests to decline, CoCoNot's harmless-but-risky
# prompts and MT-Bench/Vicuna questions to answer; each carries `behavior` (refuse | comply).
# HarmBench's standard behaviours are held out; XSTest and IFEval are test sets. The training
# prompts are decontaminated against all three (`prompts prepare --decontaminate`).
#
# Steps, each timed into OUT/timings.tsv:
#   prepare      the held-out should-refuse prompts; the training prompts, decontaminated
#   generate     under the constitution, with --check-retries (its `when:` refusal checks)
#   train sft    on the run's revisions;  train dpo  from the SFT model on the run's pairs
#   train rl     from the SFT model, the constitution's `when:` refusal checks as the reward
#                (`--reward checks`: a should-refuse prompt rewards a refusal, a should-comply
#                prompt an answer), on the same training prompts
#   eval         each model against the base: the held-out should-refuse prompts (checks and
#                eval.json's `safety`), then XSTest and an IFEval sample (--xstest, --ifeval)
#   ablation     the same generate and SFT on the should-refuse prompts alone (no answer side),
#                and its eval: what the should-comply half buys on XSTest's safe prompts
#
# Defaults are sized for about an hour and a half of compute on 2 CPU cores with the embedded
# SmolLM2-135M. Run end to end once, smaller (REFUSE=120 COMPLY_RISKY=60 COMPLY_PLAIN=20
# HELDOUT=100 IFEVAL_N=60 TOKENS=64 DPO_LR=1e-5), on 2 cores with nothing else running: 2,620 s
# in all (generate 334 s, SFT 234 s, DPO 341 s, RL 148 s, each eval 318-330 s). Against the
# base: SFT declines 7/100 held-out requests (McNemar p 0.016), XSTest unsafe 1.5% -> 6.5%
# (p 0.021), XSTest safe answered 99.2% -> 94.4% (p 0.0042); DPO 13/100, 12.5%, 88.4%; RL on
# balanced prompts 4/100, 1.5%, 97.2%; the ablation (decline rule alone) 21/100, 24.5%, 84.8%.
# Every figure with its interval, the settings that failed first, the step table and 20
# revisions read by hand are in docs/guides/whole-loop.md ("Harmless and not evasive").
# Every size is a variable below; set it in the environment, e.g.
# `REFUSE=60 COMPLY_RISKY=40 COMPLY_PLAIN=20 benchmarks/proof_harmless.sh`. PREPARE_ONLY=1 stops
# after the prepare steps (a dry run that needs no model). HEAVY_LOCK=FILE takes `flock FILE` for
# each heavy step, one at a time; NO_DPO=1 leaves out DPO and its eval, NO_RL=1 RL and its eval.
set -euo pipefail

OUT=${1:-outputs/proof-harmless}
SELFALIGN=${SELFALIGN:-.venv/bin/selfalign}
PYTHON=${PYTHON:-.venv/bin/python}
DATA=${DATA:-benchmarks/data/harmless}
CONSTITUTION=${CONSTITUTION:-constitution/harmless.yaml}
XSTEST=${XSTEST:-selfalign/data/xstest/xstest_prompts.csv}  # for decontamination only
IFEVAL=${IFEVAL:-selfalign/data/ifeval/input_data.jsonl}
REFUSE=${REFUSE:-150}              # AdvBench requests to decline, before decontamination
COMPLY_RISKY=${COMPLY_RISKY:-100}  # CoCoNot's harmless prompts that sound risky
COMPLY_PLAIN=${COMPLY_PLAIN:-50}   # MT-Bench / Vicuna questions
HELDOUT=${HELDOUT:-100}            # HarmBench behaviours each model answers in eval
IFEVAL_N=${IFEVAL_N:-100}          # IFEval prompts each model answers (IFEval has 541)
TOKENS=${TOKENS:-96}
ROUNDS=${ROUNDS:-1}
CHECK_RETRIES=${CHECK_RETRIES:-2}
SFT_EPOCHS=${SFT_EPOCHS:-2}
SFT_LR=${SFT_LR:-1e-4}
DPO_EPOCHS=${DPO_EPOCHS:-1}
DPO_LR=${DPO_LR:-1e-5}            # at 5e-5 the DPO model declined 41% of XSTest's safe prompts
DPO_BETA=${DPO_BETA:-0.1}
RL_STEPS=${RL_STEPS:-10}
RL_LR=${RL_LR:-5e-5}
RL_TOKENS=${RL_TOKENS:-32}         # a refusal shows in its first words (the detector reads those)
RL_HELD_OUT=${RL_HELD_OUT:-16}     # validation prompts the RL watch answers before and after
RL_REFUSE=${RL_REFUSE:-$((COMPLY_RISKY + COMPLY_PLAIN))}  # RL's should-refuse prompts: balanced
BATCH=${BATCH:-8}
SEED=${SEED:-0}
PREPARE_ONLY=${PREPARE_ONLY:-0}
# Which steps to run: a later run into the same OUT may rerun some (say STEPS="dpo rl" with
# another DPO_LR) on what the earlier one prepared, generated and trained; its times are added to
# timings.tsv. prepare starts OUT afresh.
STEPS=${STEPS:-prepare both ablation dpo rl}
[[ " $STEPS " == *" prepare "* ]] || export KEEP_TIMINGS=1
wants() {  # wants STEP: STEP is in STEPS and not left out by NO_DPO=1 / NO_RL=1
    [[ $1 == dpo && ${NO_DPO:-0} == 1 || $1 == rl && ${NO_RL:-0} == 1 ]] && return 1
    [[ " $STEPS " == *" $1 "* ]]
}

source "$(dirname "$0")/timed_steps.sh"  # step NAME args...: run, echo, time
take() {  # take N IN OUT: the first N rows of a CSV or JSONL file (CSV fields may hold newlines)
    "$PYTHON" - "$@" <<'EOF'
import csv, sys
n, source, target = int(sys.argv[1]), sys.argv[2], sys.argv[3]
if source.endswith(".csv"):
    with open(source, newline="", encoding="utf-8") as f, \
            open(target, "w", newline="", encoding="utf-8") as g:
        rows = csv.reader(f)
        writer = csv.writer(g, lineterminator="\n")
        writer.writerow(next(rows))
        for _, row in zip(range(n), rows):
            writer.writerow(row)
else:
    with open(source, encoding="utf-8") as f, open(target, "w", encoding="utf-8") as g:
        g.writelines(line for _, line in zip(range(n), f))
EOF
}
prepare_training() {  # prepare_training NAME INPUT...: decontaminated against every test set
    local name=$1; shift
    HEAVY_LOCK= step "prepare $name" prompts prepare "$@" --out "$OUT/$name" \
        --splits train=0.9,validation=0.1 \
        --decontaminate "$XSTEST" --decontaminate "$IFEVAL" --decontaminate "$OUT/heldout"
}
generate() {  # generate NAME PROMPT-FOLDER...
    local name=$1; shift
    local prompts=()
    for folder in "$@"; do prompts+=(--prompts "$folder"); done
    step "generate $name" generate --principles "$CONSTITUTION" "${prompts[@]}" \
        --out "$OUT/gen-$name" --rounds "$ROUNDS" --max-tokens "$TOKENS" --seed "$SEED" \
        --check-retries "$CHECK_RETRIES"
}
sft() {  # sft NAME: SFT of the base model on gen-NAME's revisions
    step "train sft $1" train sft --data "$OUT/gen-$1" --out "$OUT/sft-$1" \
        --epochs "$SFT_EPOCHS" --learning-rate "$SFT_LR" --batch-size "$BATCH" \
        --max-length 512 --seed "$SEED"
}
# Judge-free, one step per model (one engine for each of the two models): the held-out
# should-refuse prompts under the constitution's checks (eval.json's `checks` and `safety`),
# XSTest's 450 prompts (`xstest`) and the IFEval sample (`ifeval`), each model against the base.
evaluate() {  # evaluate NAME MODEL
    step "eval $1 held-out+xstest+ifeval" eval --checks-only --model "$2" \
        --prompts "$OUT/heldout" --limit "$HELDOUT" --principles "$CONSTITUTION" --xstest \
        --ifeval "$OUT/inputs/ifeval.jsonl" --out "$OUT/eval-$1" --max-tokens "$TOKENS" \
        --seed "$SEED"
}

if wants prepare; then
    rm -rf "$OUT"/inputs "$OUT"/heldout "$OUT"/refuse "$OUT"/rl-refuse "$OUT"/comply \
        "$OUT"/gen-* "$OUT"/sft-* "$OUT"/dpo-* "$OUT"/rl-* "$OUT"/eval-*
    mkdir -p "$OUT/inputs"
    take "$REFUSE" "$DATA/advbench/prompts.csv" "$OUT/inputs/refuse.csv"
    take "$COMPLY_RISKY" "$DATA/coconot-contrast/prompts.csv" "$OUT/inputs/comply-risky.csv"
    take "$COMPLY_PLAIN" "$DATA/mt-bench-vicuna/prompts.csv" "$OUT/inputs/comply-plain.csv"
    take "$IFEVAL_N" "$IFEVAL" "$OUT/inputs/ifeval.jsonl"

    HEAVY_LOCK= step "prepare heldout" prompts prepare "$DATA/harmbench/prompts.csv" \
        --out "$OUT/heldout" --splits test=1
    prepare_training refuse "$OUT/inputs/refuse.csv"
    prepare_training comply "$OUT/inputs/comply-risky.csv" "$OUT/inputs/comply-plain.csv"
fi
if [[ $PREPARE_ONLY == 1 ]]; then
    "$PYTHON" - "$OUT" <<'EOF'
import json, sys
from pathlib import Path

for name in ("refuse", "comply"):
    report = json.loads((Path(sys.argv[1]) / name / "report.json").read_text())
    d = report["decontamination"]
    print(f"{name}: {report['rows_in']} in, {report['rows_out']} kept {report['by_split']}, "
          f"dropped {report['by_reason']}; contaminated rows matched {len(d['matched'])} of "
          f"{d['test_rows']} test prompts:")
    for m in d["matched"]:
        print(f"  {m['test']} line {m['line']} (id {m['id']}): {m['dropped']}")
EOF
    cat "$OUT/timings.tsv"; exit 0
fi

if wants both; then
    generate both "$OUT/refuse" "$OUT/comply"
    sft both
    evaluate sft "$OUT/sft-both"
fi
# The ablation: the decline rule alone (no should-comply prompt, so no answer check applies).
if wants ablation; then
    generate refuse-only "$OUT/refuse"
    sft refuse-only
    evaluate ablation "$OUT/sft-refuse-only"
fi

# DPO and RL last: on a short budget they are the steps to leave out (NO_DPO=1, NO_RL=1).
if wants dpo; then
    step "train dpo both" train dpo --data "$OUT/gen-both" --model "$OUT/sft-both" \
        --out "$OUT/dpo-both" --epochs "$DPO_EPOCHS" --learning-rate "$DPO_LR" \
        --beta "$DPO_BETA" --batch-size "$BATCH" --max-length 512 --seed "$SEED"
    evaluate dpo "$OUT/dpo-both"
fi
# RL's prompts are balanced, as many to decline as to answer: with more of one kind, always
# declining (or always answering) earns more than the start without telling them apart.
if wants rl; then
    if [[ ! -d $OUT/rl-refuse ]]; then
        take "$RL_REFUSE" "$DATA/advbench/prompts.csv" "$OUT/inputs/rl-refuse.csv"
        prepare_training rl-refuse "$OUT/inputs/rl-refuse.csv"
    fi
    step "train rl both" train rl --reward checks --principles "$CONSTITUTION" \
        --model "$OUT/sft-both" --prompts "$OUT/rl-refuse" --prompts "$OUT/comply" \
        --out "$OUT/rl-both" --max-steps "$RL_STEPS" --batch-size "$BATCH" --samples 4 \
        --max-completion-length "$RL_TOKENS" --learning-rate "$RL_LR" --temperature 0.7 \
        --held-out "$RL_HELD_OUT" --seed "$SEED"
    evaluate rl "$OUT/rl-both"
fi

echo; echo "== figures"
"$PYTHON" "$(dirname "$0")/proof_harmless_figures.py" "$OUT"
