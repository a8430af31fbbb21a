# Sourced by scripts/*: the environment every cargo command of pulmo builds under.
# tch finds libtorch in the project virtualenv (the torch wheel), never downloads one.
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="$root/.venv/bin:$PATH"
export LIBTORCH_USE_PYTORCH=1
export CARGO_TERM_PROGRESS_WHEN=never
