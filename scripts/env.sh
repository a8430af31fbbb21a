# Sourced by scripts/*: the environment every cargo command of pulmo builds under.
# tch finds libtorch in the project virtualenv (the torch wheel), never downloads one.
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="$root/.venv/bin:$PATH"
export LIBTORCH_USE_PYTORCH=1
export CARGO_TERM_PROGRESS_WHEN=never
# libtorch's OpenMP threads spin while waiting by default; with several processes (or the
# node's workers) on two cores that spinning slowed registration 15-20x. Passive waiting costs
# a single process little.
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-passive}"
