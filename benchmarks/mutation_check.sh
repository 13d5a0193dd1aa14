#!/usr/bin/env bash
# Breaks one guard at a time in a scratch copy of the tree and runs the guard tests
# (tests/playbooks/test_guards.py, test_guard_matrix.py; -x: stop at the first failure)
# against it: each broken guard must make at least one test fail.
# Usage: bash benchmarks/mutation_check.sh [pytest args...]   (from the repository root)
set -uo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
py="$repo/.venv/bin/python"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

# name | file | the guard's line | what it becomes
mutations=(
  "replica cap|oncall/guards.py|        if replicas > self.policy.max_replicas:|        if False:"
  "hourly budget|oncall/guards.py|        if used >= limit:|        if used >= limit + 1000:"
  "namespace allow-list|oncall/guards.py|        if namespace not in self.policy.allowed_namespaces:|        if False:"
)

targets=(tests/playbooks/test_guards.py tests/playbooks/test_guard_matrix.py -x)
status=0
for m in "${mutations[@]}"; do
  IFS='|' read -r name file before after <<<"$m"
  rm -rf "$scratch/tree" && git -C "$repo" worktree add -q --detach "$scratch/tree" HEAD
  python3 - "$scratch/tree/$file" "$before" "$after" <<'PY'
import sys
path, before, after = sys.argv[1:]
text = open(path).read()
assert text.count(before) == 1, f"{before!r} not found once in {path}"
open(path, "w").write(text.replace(before, after))
PY
  echo "== $name broken ($file)"
  out="$(cd "$scratch/tree" && "$py" -c 'import oncall.guards as g; print(g.__file__)')"
  [[ "$out" == "$scratch/tree/"* ]] || { echo "imports $out, not the scratch copy" >&2; exit 2; }
  if (cd "$scratch/tree" && "$py" -m pytest -q -p no:cacheprovider "${targets[@]}" "$@" \
      >"$scratch/$name.log" 2>&1); then
    echo "   NOT CAUGHT: every test passed"
    status=1
  fi
  grep -E "^FAILED|^[0-9]+ (passed|failed)|^=+ .*(passed|failed)" "$scratch/$name.log" | cut -c1-160
  git -C "$repo" worktree remove --force "$scratch/tree"
done
exit $status
