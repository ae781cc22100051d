#!/usr/bin/env bash
# Claim 1 of issue 8 on Fashion-MNIST: does a student trained from stored teacher labels beat the same
# student trained on hard labels when the teacher is clearly stronger? (docs/results.md, "Where stored labels beat
# hard labels: Fashion-MNIST".) Every tuning run trains and evaluates with `--validation 0.2`: validation =
# key hash in [0.2, 0.4), training = hash >= 0.4; the held-out split (hash < 0.2) is neither trained on nor
# evaluated on until the `final` stage, which runs the chosen options once per seed with `distill-demo`.
#
#   Tools/fashion_study.sh OUT [import] [teacher] [pass] [students] [final]     (default: import teacher pass students)
#   Tools/fashion_study.sh OUT study                  the held-out study in one command (docs/results.md)
#   Tools/fashion_study.sh OUT tables DIR...          mean ± std tables from the seed-N/summary.json of one or more
#                                                     `distill-demo` outputs (seeds run by separate processes)
#
# The final study needs none of the stages below: `tinyshard distill-demo --dataset fashion-mnist` imports the
# stores (cached in ~/.cache/tinyshard/fashion-mnist), trains the teacher on the other 45,000 once (cached under
# its fingerprint), and evaluates every model on the official 10,000 test images. The stages below are the
# tuning grid (validation split only) behind the choices in docs/results.md.
#
# Data: Debian's dataset-fashion-mnist (apt-get install -y dataset-fashion-mnist), the first $LIMIT of the
# 60,000 training images (default 15,000: 3,000 held out by key hash, 12,000 to train on; 9,000 / 3,000
# for tuning) are the student's store, OUT/fashion.tsimg. The official test set is not used.
#
# Two kinds of teacher (TEACHER_DATA):
#   store  trained on the student's own training split (as the main job does): a capacity gap only.
#   rest   trained on the OTHER 45,000 training images (OUT/fashion-rest.tsimg: keys fashion_15000...,
#          disjoint from every image of the student's store), with its own 10% key-hash held-out split
#          (of those 45,000) to report on; the student's validation and held-out images are never seen.
#          This is TinyViT's setting: a teacher stronger than anything the student's data can train.
#
# Knobs (environment): BIN, LIMIT, SEEDS, TEACHER_ARCH, TEACHER_RECIPES (the first one's teacher labels the
# passes), TEACHER_EPOCHS, TEACHER_LR, RECIPES (views of the passes and students), STUDENT_ARCHS, LRS,
# EPOCHS (of the students; PASS_EPOCHS of the passes, default EPOCHS: a student of fewer epochs replays the
# pass's first ones), K. The hard-label and the distilled student always get the same grid, and both replay
# the pass's views (`--shards`, with `--hard-labels` for the baseline), so each pair sees identical views.
# Every run appends its validation top-1 to OUT/results.tsv (Tools/fashion_study_results.tsv is the study's).
#
# Runs are deterministic (same seed, same accuracy, with one thread or two). Run with
#   OMP_NUM_THREADS=1 OMP_WAIT_POLICY=passive nice -n 10 Tools/fashion_study.sh ...
# The grid behind docs/results.md (OUT=/tmp/fm) is Tools/fashion_study_results.tsv: invocations of this script
# that varied STUDENT_ARCHS, LRS, EPOCHS, TEACHER_EPOCHS, TEACHER_LR, TEACHER_RECIPES, RECIPES and
# TEACHER_DATA; each row records the values it ran with and its validation top-1 (teacher-rest rows: the
# top-1 on the rest's own held-out tenth).
set -euo pipefail
OUT=${1:?usage: Tools/fashion_study.sh OUT [import] [teacher] [pass] [students] [final] | study | tables DIR...}
shift || true
if [ "${1:-}" = study ]; then
  # 5 seeds of hard / online / shards, the K sweep from one K = 10 pass, students without the hard samples, the
  # analysis and the class-correlation similarity: every model on the official test set.
  exec "${BIN:-.build/release/tinyshard}" distill-demo --dataset fashion-mnist --seeds "${SEEDS:-0,1,2,3,4}" --k 10 \
    --k-sweep 1,2,3,5,10 --hard-samples 0.5 --out "$OUT"
fi
if [ "${1:-}" = tables ]; then
  shift
  exec python3 - "$@" <<'PY'
import glob, json, statistics, sys
runs = {}
for folder in sys.argv[1:]:
    for path in sorted(glob.glob(folder + "/seed-*/summary.json")) + sorted(glob.glob(folder + "/summary.json")):
        s = json.load(open(path))
        if "runs" in s:
            continue
        runs.setdefault(s["seed"], s)
seeds = sorted(runs)
def ms(values, scale=100, digits=2):
    values = [v * scale for v in values]
    m = statistics.mean(values); sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{m:.{digits}f} ± {sd:.{digits}f}"
def top1(s, name): return s["students"][name]["top1"]
print(f"seeds: {', '.join(map(str, seeds))}; split: {runs[seeds[0]]['split']}\n")
print("| seed | teacher | hard | online | shards | shards − hard | shards − online |\n|---:|---:|---:|---:|---:|---:|---:|")
for seed in seeds:
    s = runs[seed]
    h, o, d = top1(s, "hard"), top1(s, "online"), top1(s, "shards")
    print(f"| {seed} | {s['teacher']['top1']*100:.2f} | {h*100:.2f} | {o*100:.2f} | {d*100:.2f} | {(d-h)*100:+.2f} | {(d-o)*100:+.2f} |")
all_ = [runs[x] for x in seeds]
dh = [top1(s, "shards") - top1(s, "hard") for s in all_]
print(f"| mean ± std | {ms([s['teacher']['top1'] for s in all_])} | {ms([top1(s, 'hard') for s in all_])} | "
      f"{ms([top1(s, 'online') for s in all_])} | {ms([top1(s, 'shards') for s in all_])} | {ms(dh)} | "
      f"{ms([top1(s, 'shards') - top1(s, 'online') for s in all_])} |")
print(f"\nshards above hard labels on {sum(d > 0 for d in dh)} of {len(dh)} seeds")
print("\n| seed | train wall s hard / online / shards | bytes/record | records |\n|---:|---|---:|---:|")
for seed in seeds:
    s = runs[seed]
    w = [s["students"][n]["train_seconds"] for n in ("hard", "online", "shards")]
    print(f"| {seed} | {w[0]:.0f} / {w[1]:.0f} / {w[2]:.0f} | {s['shards']['bytes_per_record']:.1f} | {s['shards']['records']} |")
with_analysis = [runs[x] for x in seeds if "analysis" in runs[x]]
if with_analysis:
    a0 = with_analysis[0]["analysis"]
    print(f"\nanalysis ({len(with_analysis)} seeds): agreement top-1 {ms([s['analysis']['agreement_top1'] for s in with_analysis])} %, "
          f"top-{a0['n']} {ms([s['analysis']['agreement_topn'] for s in with_analysis])} %, hard images (share ≥ {a0['hard_share_threshold']}) "
          f"{ms([s['analysis']['hard_image_share'] for s in with_analysis])} %")
    print("\n| k | mass mean % | p10 % | p50 % | p90 % | residual per other class | bytes/record |\n|---:|---:|---:|---:|---:|---:|---:|")
    for j, row in enumerate(a0["mass_by_k"]):
        rows = [s["analysis"]["mass_by_k"][j] for s in with_analysis]
        b = [r["bytes_per_record"] for r in rows if r.get("bytes_per_record") is not None]
        print(f"| {row['k']} | {ms([r['mean'] for r in rows])} | {ms([r['p10'] for r in rows])} | {ms([r['p50'] for r in rows])} | "
              f"{ms([r['p90'] for r in rows])} | {ms([r['residual'] for r in rows], 1, 5)} | {ms(b, 1, 1) if b else ''} |")
    print("\n| seed | similarity, hard labels | similarity, from shards |\n|---:|---:|---:|")
    for seed in seeds:
        c = runs[seed].get("correlation_similarity")
        if c: print(f"| {seed} | {c['hard']:.3f} | {c['shards']:.3f} |")
    hs = [s["correlation_similarity"]["hard"] for s in with_analysis]; ds = [s["correlation_similarity"]["shards"] for s in with_analysis]
    print(f"| mean ± std | {ms(hs, 1, 3)} | {ms(ds, 1, 3)} |")
sweep = [runs[x] for x in seeds if "k_sweep" in runs[x]]
if sweep:
    print(f"\nK sweep ({len(sweep)} seeds: {', '.join(str(s['seed']) for s in sweep)}), one pass of K = {sweep[0]['shards']['pass_k']}:")
    print("\n| k | top-1 % | − hard labels | bytes/record | per seed |\n|---:|---:|---:|---:|---|")
    for j, p in enumerate(sweep[0]["k_sweep"]):
        t = [s["k_sweep"][j]["top1"] for s in sweep]; g = [s["k_sweep"][j]["minus_hard"] for s in sweep]
        b = [s["k_sweep"][j]["bytes_per_record"] for s in sweep]
        print(f"| {p['k']} | {ms(t)} | {ms(g)} | {ms(b, 1, 1)} | {' / '.join(f'{x*100:.2f}' for x in t)} |")
hard = [runs[x] for x in seeds if "hard_samples" in runs[x]]
if hard:
    h0 = hard[0]["hard_samples"]
    print(f"\nhard samples (share ≥ {h0['share_threshold']}; {len(hard)} seeds): {ms([s['hard_samples']['excluded_images'] for s in hard], 1, 0)} images "
          f"({ms([s['hard_samples']['image_share'] for s in hard])} %) left out")
    print("\n| student | with | without | without − with | per seed (with → without) |\n|---|---:|---:|---:|---|")
    for name, label in (("hard", "hard labels"), ("shards", "from shards")):
        w = [s["hard_samples"][name]["with"] for s in hard]; wo = [s["hard_samples"][name]["without"] for s in hard]
        print(f"| {label} | {ms(w)} | {ms(wo)} | {ms([b - a for a, b in zip(w, wo)])} | "
              f"{'; '.join(f'{a*100:.2f} → {b*100:.2f}' for a, b in zip(w, wo))} |")
PY
fi
STAGES=${*:-import teacher pass students}
BIN=${BIN:-.build/release/tinyshard}
DATA=${DATA:-/usr/share/datasets/fashion-mnist}
LIMIT=${LIMIT:-15000}
SEEDS=${SEEDS:-0}
EPOCHS=${EPOCHS:-20}
PASS_EPOCHS=${PASS_EPOCHS:-$EPOCHS}
TEACHER_EPOCHS=${TEACHER_EPOCHS:-30}
TEACHER_RECIPES=${TEACHER_RECIPES:-fashion}
TEACHER_ARCH=${TEACHER_ARCH:-t11m}
TEACHER_LR=${TEACHER_LR:-2e-3}
TEACHER_DATA=${TEACHER_DATA:-store}
RECIPES=${RECIPES:-fashion}
STUDENT_ARCHS=${STUDENT_ARCHS:-s69k}
LRS=${LRS:-4e-3 8e-3}
K=${K:-5}
VAL="--validation 0.2"
mkdir -p "$OUT/archs" "$OUT/recipes"
RESULTS="$OUT/results.tsv"
[ -f "$RESULTS" ] || printf 'what\tseed\tarch\trecipe\tepochs\tlr\ttargets\tshards_teacher\tk\tvalidation_top1\tseconds\n' > "$RESULTS"

# Architectures (32 px views of the 28 px images, 10 classes). MACs at 32 px: t11m 11.2M, t5m 24.3M (5.1M parameters),
# s69k 0.68M, s19k 0.19M (tinyshard model info --arch FILE).
cat > "$OUT/archs/t11m.json" <<'J'
{"embed_dims":[64,128,160,192],"depths":[1,1,2,1],"num_heads":[2,4,5,6],"window_sizes":[4,4,2,1],"num_classes":10,"img_size":32}
J
cat > "$OUT/archs/t5m.json" <<'J'
{"embed_dims":[64,128,160,320],"depths":[2,2,6,2],"num_heads":[2,4,5,10],"window_sizes":[4,4,2,1],"num_classes":10,"img_size":32}
J
cat > "$OUT/archs/s69k.json" <<'J'
{"embed_dims":[16,32,32,48],"depths":[1,1,1,1],"num_heads":[1,1,1,2],"window_sizes":[4,4,2,1],"num_classes":10,"img_size":32}
J
cat > "$OUT/archs/s19k.json" <<'J'
{"embed_dims":[8,16,16,24],"depths":[1,1,1,1],"num_heads":[1,1,1,1],"window_sizes":[4,4,2,1],"num_classes":10,"img_size":32}
J
# Recipes (missing keys keep TinyViT's values; null turns a part off). Clothes keep their class when
# mirrored, so every recipe flips. `tinyvit` and `tinyvit-mix` are the presets (crop 8-100%, RandAugment
# m9, erasing 0.25; -mix adds mixup 0.8 / cutmix 1.0).
cat > "$OUT/recipes/fashion.json" <<'J'
{"horizontal_flip":0.5,"crop":{"scale":[0.5,1.0]},"rand_augment":null,"erasing":null,"mix":null}
J
cat > "$OUT/recipes/fashion-ra.json" <<'J'
{"horizontal_flip":0.5,"crop":{"scale":[0.35,1.0]},"rand_augment":{"magnitude":5,"ops":["AutoContrast","Equalize","Rotate","PosterizeIncreasing","ContrastIncreasing","BrightnessIncreasing","SharpnessIncreasing","ShearX","ShearY","TranslateXRel","TranslateYRel"]},"erasing":{"probability":0.25}}
J
cat > "$OUT/recipes/fashion-mix.json" <<'J'
{"horizontal_flip":0.5,"crop":{"scale":[0.5,1.0]},"rand_augment":null,"erasing":null,"mix":{}}
J
recipe() { case "$1" in tinyvit|tinyvit-mix|digits) echo "$1";; *) echo "$OUT/recipes/$1.json";; esac; }
top1() { sed -n 's/.*validation top-1 \([0-9.]*\)%.*/\1/p' "$1" | tail -1; }
record() { printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >> "$RESULTS"; tail -1 "$RESULTS"; }
STORE="$OUT/fashion.tsimg"
REST="$OUT/fashion-rest.tsimg"

if [[ " $STAGES " == *" import "* ]]; then
  printf 'T-shirt/top\nTrouser\nPullover\nDress\nCoat\nSandal\nShirt\nSneaker\nBag\nAnkle boot\n' > "$OUT/classes.txt"
  [ -f "$STORE" ] || "$BIN" images import --idx "$DATA/train-images-idx3-ubyte.gz" --labels "$DATA/train-labels-idx1-ubyte.gz" \
    --class-names "$OUT/classes.txt" --key-prefix fashion --limit "$LIMIT" --out "$STORE"
  [ -f "$REST" ] || "$BIN" images import --idx "$DATA/train-images-idx3-ubyte.gz" --labels "$DATA/train-labels-idx1-ubyte.gz" \
    --class-names "$OUT/classes.txt" --key-prefix fashion --skip "$LIMIT" --out "$REST"
fi

for seed in $SEEDS; do
  if [[ " $STAGES " == *" teacher "* ]]; then
    for tr in $TEACHER_RECIPES; do
      if [ "$TEACHER_DATA" = rest ]; then
        # Reported on its own held-out tenth of the other 45,000 images (the "validation" column of results.tsv).
        run="$OUT/teacher-rest-$TEACHER_ARCH-$tr-$TEACHER_EPOCHS-$TEACHER_LR-s$seed"; t0=$(date +%s)
        [ -f "$run/model.safetensors" ] && continue
        "$BIN" train --images "$REST" --arch "$OUT/archs/$TEACHER_ARCH.json" --recipe "$(recipe "$tr")" --hard-labels \
          --epochs "$TEACHER_EPOCHS" --lr "$TEACHER_LR" --min-lr "$(python3 -c "print($TEACHER_LR/100)")" --seed "$seed" \
          --eval-every 5 --held-out 0.1 --out "$run" > "$run.log"
        record teacher-rest "$seed" "$TEACHER_ARCH" "$tr" "$TEACHER_EPOCHS" "$TEACHER_LR" hard "" "" \
          "$(sed -n 's/.*held-out top-1 \([0-9.]*\)%.*/\1/p' "$run.log" | tail -1)" $(( $(date +%s) - t0 ))
        continue
      fi
      run="$OUT/teacher-$TEACHER_ARCH-$tr-$TEACHER_EPOCHS-$TEACHER_LR-s$seed"; t0=$(date +%s)
      [ -f "$run/model.safetensors" ] && continue
      "$BIN" train --images "$STORE" --arch "$OUT/archs/$TEACHER_ARCH.json" --recipe "$(recipe "$tr")" --hard-labels \
        --epochs "$TEACHER_EPOCHS" --lr "$TEACHER_LR" --min-lr "$(python3 -c "print($TEACHER_LR/100)")" --seed "$seed" \
        --eval-every 0 $VAL --out "$run" > "$run.log"
      record teacher "$seed" "$TEACHER_ARCH" "$tr" "$TEACHER_EPOCHS" "$TEACHER_LR" hard "" "" "$(top1 "$run.log")" $(( $(date +%s) - t0 ))
    done
  fi
  tr=${TEACHER_RECIPES%% *}
  tid="$TEACHER_ARCH-$tr-$TEACHER_EPOCHS-$TEACHER_LR"
  [ "$TEACHER_DATA" = rest ] && tid="rest-$tid"
  if [[ " $STAGES " == *" pass "* ]]; then
    for r in $RECIPES; do
      pass="$OUT/shards-$tid-$r-e$PASS_EPOCHS-k$K-s$seed"
      [ -f "$pass/manifest.json" ] && continue
      "$BIN" teacher --images "$STORE" --weights "$OUT/teacher-$tid-s$seed/model.safetensors" --arch "$OUT/archs/$TEACHER_ARCH.json" \
        --recipe "$(recipe "$r")" --epochs "$PASS_EPOCHS" --k "$K" --seed "$seed" $VAL --out "$pass" > "$pass.log"
    done
  fi
  if [[ " $STAGES " == *" students "* ]]; then
    for arch in $STUDENT_ARCHS; do for r in $RECIPES; do for lr in $LRS; do
      for targets in hard shards; do
        run="$OUT/$arch-$r-e$EPOCHS-p$PASS_EPOCHS-$lr-$targets-$tid-k$K-s$seed"; t0=$(date +%s)
        [ "$targets" = hard ] && run="$OUT/$arch-$r-e$EPOCHS-p$PASS_EPOCHS-$lr-hard-s$seed"  # views do not depend on the teacher
        [ -f "$run/model.safetensors" ] && continue
        # Both replay the pass's views (identical to drawing them from the recipe with the pass's seed).
        extra=(); [ "$targets" = hard ] && extra=(--hard-labels)
        "$BIN" train --images "$STORE" --shards "$OUT/shards-$tid-$r-e$PASS_EPOCHS-k$K-s$seed" --arch "$OUT/archs/$arch.json" "${extra[@]}" \
          --epochs "$EPOCHS" --lr "$lr" --min-lr "$(python3 -c "print($lr/100)")" --seed "$seed" --eval-every 0 $VAL --out "$run" > "$run.log"
        if [ "$targets" = hard ]; then
          record student "$seed" "$arch" "$r" "$EPOCHS" "$lr" hard "" "" "$(top1 "$run.log")" $(( $(date +%s) - t0 ))
        else
          record student "$seed" "$arch" "$r" "$EPOCHS" "$lr" shards "$tid" "$K" "$(top1 "$run.log")" $(( $(date +%s) - t0 ))
        fi
      done
    done; done; done
  fi
done

# The 5-seed study on the held-out split with the options chosen above (one teacher per seed):
#   SEEDS="0 1 2 3 4" FINAL_OPTIONS="..." Tools/fashion_study.sh OUT final
if [[ " $STAGES " == *" final "* ]]; then
  # shellcheck disable=SC2086
  "$BIN" distill-demo --images "$STORE" --seeds "$(echo $SEEDS | tr ' ' ,)" $FINAL_OPTIONS --out "$OUT/final" | tee "$OUT/final.log"
fi
