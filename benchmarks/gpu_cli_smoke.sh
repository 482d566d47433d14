# User-facing CLI paths with --device DEV (default cuda): simulate, reconstruct --method cryolithe
# (and its refusal to overwrite), icetide, the quick benchmarks of both. Logs and JSON under $OUT.
# Run from the repository root with the package importable: PYTHONPATH=src bash benchmarks/gpu_cli_smoke.sh
DEV=${DEV:-cuda}
OUT=${OUT:-/tmp/gpucli}; mkdir -p $OUT
W=$(mktemp -d)
printf 'from inversa.cli._app import _entry\nif __name__ == "__main__":\n    _entry()\n' > $W/run_inversa.py
inv() { echo "== inversa $*"; /usr/bin/time -f "%e s wall, %M KB rss" ${PY:-python3} $W/run_inversa.py "$@"; echo "rc=$?"; }
inv simulate $W/sim --shape 48,96,96 --n-particles 4 --shift 3 --rotation 2 --local-deformation 2
inv reconstruct $W/sim/tiltseries.mrc --method cryolithe --device $DEV --out $W/cl.mrc
inv reconstruct $W/sim/tiltseries.mrc --method cryolithe --device $DEV --out $W/cl.mrc
inv reconstruct $W/sim/tiltseries.mrc --method cryolithe --device $DEV --out $W/cl.mrc --force
inv icetide $W/sim/tiltseries.mrc --out $W/ice --steps 200 --thickness 48 --device $DEV
ls $W/ice
inv bench cryolithe --quick --device $DEV --json $OUT/cryolithe_quick_$DEV.json
inv bench icetide --quick --device $DEV --json $OUT/icetide_quick_$DEV.json
