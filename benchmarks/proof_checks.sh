#!/usr/bin/env bash
# The loop proved without a judge: does training on selfalign's data make the embedded model
# follow a principle's checkable rule (fewer than 40 words) more often, on prompts it never saw?
#
#   benchmarks/proof_checks.sh PROMPTS [OUT]
#
# PROMPTS: any prompt file `selfalign prompts prepare` reads, large enough for a held-out test
# split (e.g. MT-Bench's questions or HH-RLHF's prompts, a few hundred rows). OUT defaults to
# outputs/proof-checks. Every step is timed into OUT/timings.tsv; the figures are in
# OUT/eval-*/eval.json and report.md, and OUT/rl/report.md. Sizes can be changed through the
# environment (the defaults are for the embedded SmolLM2-135M on a CPU):
#   TOKENS (96)  SFT_STEPS (60)  RL_STEPS (40)  SEED (0)  IFEVAL (IFEval's own file)
#   PRINCIPLE (principles/checked/brief.yaml)
set -euo pipefail

PROMPTS=${1:?usage: benchmarks/proof_checks.sh PROMPTS [OUT]}
OUT=${2:-outputs/proof-checks}
SELFALIGN=${SELFALIGN:-.venv/bin/selfalign}
PRINCIPLE=${PRINCIPLE:-principles/checked/brief.yaml}
IFEVAL=${IFEVAL:-selfalign/data/ifeval/input_data.jsonl}
TOKENS=${TOKENS:-96}
SFT_STEPS=${SFT_STEPS:-60}
RL_STEPS=${RL_STEPS:-40}
SEED=${SEED:-0}

source "$(dirname "$0")/timed_steps.sh"  # step NAME args...: run, echo, time
# Both models answer the held-out test split; --checks-only loads no judge.
checks_eval() {  # checks_eval NAME CANDIDATE
    step "eval-$1 (checks only)" eval --checks-only --model "$2" --prompts "$OUT/prompts" \
        --principles "$PRINCIPLE" --out "$OUT/eval-$1" --max-tokens "$TOKENS" --seed "$SEED"
}
# The same models with the judge (the base model), IFEval's prompts and the over-refusal rate.
full_eval() {  # full_eval NAME CANDIDATE
    step "eval-$1-full (judge, IFEval)" eval --model "$2" --prompts "$OUT/prompts" \
        --principles "$PRINCIPLE" --out "$OUT/eval-$1-full" --max-tokens "$TOKENS" \
        --seed "$SEED" --ifeval "$IFEVAL"
}

rm -rf "$OUT/prompts" "$OUT/gen" "$OUT/sft" "$OUT/rl" "$OUT"/eval-*
step "prepare" prompts prepare "$PROMPTS" --out "$OUT/prompts" --user-field id \
    --splits train=0.7,validation=0.1,test=0.2
# The base model answers, critiques and revises under the principle; a revision that still
# breaks the check is asked again (the retries are generate's --check-retries).
step "generate" generate --principles "$PRINCIPLE" --prompts "$OUT/prompts" --out "$OUT/gen" \
    --rounds 1 --max-tokens "$TOKENS" --seed "$SEED" --check-retries 2
step "train sft" train sft --data "$OUT/gen" --out "$OUT/sft" --max-steps "$SFT_STEPS" \
    --batch-size 8 --max-length 512 --seed "$SEED"
checks_eval sft "$OUT/sft"
# RL from the base model, rewarded by the share of the principle's checks each completion passes;
# the watch reports the held-out (validation) pass rate at the start and the end.
step "train rl (checks)" train rl --reward checks --principles "$PRINCIPLE" \
    --prompts "$OUT/prompts" --out "$OUT/rl" --max-steps "$RL_STEPS" --batch-size 8 \
    --samples 4 --max-completion-length "$TOKENS" --learning-rate 5e-6 --temperature 0.7 \
    --held-out 32 --seed "$SEED"
checks_eval rl "$OUT/rl"
full_eval sft "$OUT/sft"
full_eval rl "$OUT/rl"

echo; echo "== figures"
"${PYTHON:-.venv/bin/python}" - "$OUT" <<'EOF'
import json, sys
from pathlib import Path

out = Path(sys.argv[1])
for name in ("sft", "rl"):
    ev = json.loads((out / f"eval-{name}" / "eval.json").read_text())
    o = ev["checks"]["overall"]
    print(f"{name}: held-out pass rate {o['candidate']['passed']}/{o['candidate']['total']} "
          f"{o['candidate']['interval']} vs base {o['baseline']['passed']}/"
          f"{o['baseline']['total']} {o['baseline']['interval']}; McNemar p {o['mcnemar_p']}")
    full = json.loads((out / f"eval-{name}-full" / "eval.json").read_text())
    print(f"  win rate {full['win_rate']} {full['win_rate_ci']}; over-refusal "
          f"{full['refusals']['candidate']['benign']} (base {full['refusals']['baseline']['benign']})")
    for role in ("candidate", "baseline"):
        figures = full["ifeval"][role]
        print(f"  IFEval {role}: " + ", ".join(
            f"{k} {figures[k]['rate']}" for k in ("prompt_strict", "instruction_strict",
                                                  "prompt_loose", "instruction_loose")))
watch = json.loads((out / "rl" / "selfalign-train.json").read_text())["watch"]
print(f"rl watch (validation): pass rate {watch['start']['checks_pass_rate']} -> "
      f"{watch['end']['checks_pass_rate']}")
EOF
echo; cat "$OUT/timings.tsv"
