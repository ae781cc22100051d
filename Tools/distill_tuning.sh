#!/usr/bin/env bash
# Hyper-parameter choices of the main job (`tinyshard distill-demo`), made on the VALIDATION part of the
# training split (key hash in [0.2, 0.4): `--validation 0.2`), never on the held-out split (hash < 0.2),
# which these runs neither train on nor evaluate on. Every run's validation top-1 goes to OUT/results.tsv.
#
#   Tools/distill_tuning.sh OUT [teacher] [pass] [students]      (default: all three stages)
#
# Knobs (environment): BIN, SEEDS, TEACHER_ARCH, TEACHER_RECIPES (the first one's teacher labels the
# passes), TEACHER_EPOCHS, TEACHER_LR, RECIPES (views of the passes and students), STUDENT_ARCHS, LRS,
# EPOCHS (of passes and students), K. The hard-label and the distilled student always get the same grid.
# Students replay the pass's views (`--shards`), which equals drawing them from the recipe with the
# pass's seed (DistillTests prove it), so both see identical views.
#
# The grid behind docs/results.md's "How the main job was tuned" (OMP_NUM_THREADS=1: one core per run, two
# runs side by side; results do not depend on the thread count — checked on repeated cells):
#   SEEDS=0 TEACHER_ARCH=teacher RECIPES="digits-ra strong digits-ra-mix" STUDENT_ARCHS="s69k s12k" LRS=4e-3 $0 A
#   SEEDS="0 1" TEACHER_ARCH=t11m TEACHER_EPOCHS=40 TEACHER_RECIPES=digits-ra RECIPES="digits-ra strong digits-ra-mix" LRS=4e-3 $0 B
#   ... EPOCHS=10 RECIPES=digits-ra LRS="2e-3 3e-3 4e-3 6e-3 8e-3 1.2e-2" STUDENT_ARCHS="s12k s69k" $0 B students
#   ... EPOCHS=10 RECIPES=digits LRS="2e-3 3e-3 4e-3 6e-3 8e-3 1.2e-2" STUDENT_ARCHS="s12k s69k" $0 B pass students
#   ... EPOCHS=20 RECIPES=digits LRS="4e-3 8e-3 1.2e-2" STUDENT_ARCHS=s69k $0 C pass students
#   SEEDS=0 TEACHER_ARCH=t11m TEACHER_EPOCHS=40 TEACHER_RECIPES=digits $0 C teacher
#   SEEDS=0 ... TEACHER_RECIPES=digits EPOCHS=20 RECIPES=digits LRS="8e-3 1.2e-2" STUDENT_ARCHS=s69k $0 D pass students
set -euo pipefail
OUT=${1:?usage: Tools/distill_tuning.sh OUT [teacher] [pass] [students]}
shift || true
STAGES=${*:-teacher pass students}
BIN=${BIN:-.build/release/tinyshard}
SEEDS=${SEEDS:-0 1}
EPOCHS=${EPOCHS:-20}
TEACHER_EPOCHS=${TEACHER_EPOCHS:-40}
TEACHER_RECIPES=${TEACHER_RECIPES:-digits}
TEACHER_ARCH=${TEACHER_ARCH:-t11m}
TEACHER_LR=${TEACHER_LR:-2e-3}
RECIPES=${RECIPES:-digits}
LRS=${LRS:-4e-3 8e-3 1.2e-2}
K=${K:-5}
VAL="--validation 0.2"
mkdir -p "$OUT/archs" "$OUT/recipes"
RESULTS="$OUT/results.tsv"
[ -f "$RESULTS" ] || printf 'what\tseed\tarch\trecipe\tepochs\tlr\ttargets\tvalidation_top1\tseconds\n' > "$RESULTS"

# Architectures (32 px digits, 10 classes).
cat > "$OUT/archs/teacher.json" <<'J'
{"embed_dims":[32,64,96,128],"depths":[1,1,2,1],"num_heads":[1,2,3,4],"window_sizes":[4,4,2,1],"num_classes":10,"img_size":32}
J
cat > "$OUT/archs/t11m.json" <<'J'
{"embed_dims":[64,128,160,192],"depths":[1,1,2,1],"num_heads":[2,4,5,6],"window_sizes":[4,4,2,1],"num_classes":10,"img_size":32}
J
cat > "$OUT/archs/s69k.json" <<'J'
{"embed_dims":[16,32,32,48],"depths":[1,1,1,1],"num_heads":[1,1,1,2],"window_sizes":[4,4,2,1],"num_classes":10,"img_size":32}
J
cat > "$OUT/archs/s12k.json" <<'J'
{"embed_dims":[8,16,16,24],"depths":[1,1,1,1],"num_heads":[1,1,1,1],"window_sizes":[4,4,2,1],"num_classes":10,"img_size":32}
J
STUDENT_ARCHS=${STUDENT_ARCHS:-s69k}
# Recipes beyond the presets (`digits` is the preset: no flip, crop 0.7–1, nothing else).
cat > "$OUT/recipes/digits-ra.json" <<'J'
{"horizontal_flip":0,"crop":{"scale":[0.5,1.0]},"rand_augment":{"magnitude":5,"ops":["AutoContrast","Equalize","Rotate","PosterizeIncreasing","ContrastIncreasing","BrightnessIncreasing","SharpnessIncreasing","ShearX","ShearY","TranslateXRel","TranslateYRel"]},"erasing":{"area":[0.02,0.1]}}
J
cat > "$OUT/recipes/strong.json" <<'J'
{"horizontal_flip":0,"crop":{"scale":[0.25,1.0]},"rand_augment":{"magnitude":9,"ops":["AutoContrast","Equalize","Rotate","PosterizeIncreasing","ContrastIncreasing","BrightnessIncreasing","SharpnessIncreasing","ShearX","ShearY","TranslateXRel","TranslateYRel"]},"erasing":{"probability":0.25}}
J
cat > "$OUT/recipes/digits-ra-mix.json" <<'J'
{"horizontal_flip":0,"crop":{"scale":[0.5,1.0]},"rand_augment":{"magnitude":5,"ops":["AutoContrast","Equalize","Rotate","PosterizeIncreasing","ContrastIncreasing","BrightnessIncreasing","SharpnessIncreasing","ShearX","ShearY","TranslateXRel","TranslateYRel"]},"erasing":{"area":[0.02,0.1]},"mix":{}}
J
recipe() { case "$1" in tinyvit|tinyvit-mix|digits) echo "$1";; *) echo "$OUT/recipes/$1.json";; esac; }
top1() { sed -n 's/.*validation top-1 \([0-9.]*\)%.*/\1/p' "$1" | tail -1; }
record() { printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >> "$RESULTS"; tail -1 "$RESULTS"; }
[ -f Tools/data/digits.csv.gz ] || { echo "run from the package root"; exit 2; }
STORE="$OUT/digits.tis"
if [ ! -f "$STORE" ]; then
  "$BIN" distill-demo --out "$OUT/import" --epochs 1 --teacher-epochs 1 --validation > /dev/null
  cp "$OUT/import/digits.tis" "$STORE"
fi

for seed in $SEEDS; do
  if [[ " $STAGES " == *" teacher "* ]]; then
    for tr in $TEACHER_RECIPES; do
      run="$OUT/teacher-$TEACHER_ARCH-$tr-$TEACHER_EPOCHS-s$seed"; t0=$(date +%s)
      "$BIN" train --images "$STORE" --arch "$OUT/archs/$TEACHER_ARCH.json" --recipe "$(recipe "$tr")" --hard-labels \
        --epochs "$TEACHER_EPOCHS" --lr "$TEACHER_LR" --min-lr "$(python3 -c "print($TEACHER_LR/100)")" --seed "$seed" --eval-every 0 $VAL --out "$run" > "$run.log"
      record teacher "$seed" "$TEACHER_ARCH" "$tr" "$TEACHER_EPOCHS" "$TEACHER_LR" hard "$(top1 "$run.log")" $(( $(date +%s) - t0 ))
    done
  fi
  tr=${TEACHER_RECIPES%% *}
  if [[ " $STAGES " == *" pass "* ]]; then
    for r in $RECIPES; do
      "$BIN" teacher --images "$STORE" --weights "$OUT/teacher-$TEACHER_ARCH-$tr-$TEACHER_EPOCHS-s$seed/model.safetensors" --arch "$OUT/archs/$TEACHER_ARCH.json" \
        --recipe "$(recipe "$r")" --epochs "$EPOCHS" --k "$K" --seed "$seed" $VAL --out "$OUT/shards-$r-s$seed" > "$OUT/shards-$r-s$seed.log"
    done
  fi
  if [[ " $STAGES " == *" students "* ]]; then
    for arch in $STUDENT_ARCHS; do for r in $RECIPES; do for lr in $LRS; do
      for targets in hard shards; do
        run="$OUT/$arch-$r-$lr-$targets-s$seed"; t0=$(date +%s)
        # Both replay the pass's views (identical to drawing them from the recipe with the pass's seed).
        extra=(); [ "$targets" = hard ] && extra=(--hard-labels)
        "$BIN" train --images "$STORE" --shards "$OUT/shards-$r-s$seed" --arch "$OUT/archs/$arch.json" "${extra[@]}" \
          --epochs "$EPOCHS" --lr "$lr" --min-lr "$(python3 -c "print($lr/100)")" --seed "$seed" --eval-every 0 $VAL --out "$run" > "$run.log"
        record student "$seed" "$arch" "$r" "$EPOCHS" "$lr" "$targets" "$(top1 "$run.log")" $(( $(date +%s) - t0 ))
      done
    done; done; done
  fi
done
