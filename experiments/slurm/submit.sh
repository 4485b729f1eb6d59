#!/bin/bash
# Search (a job array), then the multi-node fit once every task of the array
# has ended well, in one command:
#
#   DATA=/data/xau_1m.csv COLUMN=close WORKDIR=$HOME/runs/xau \
#       bash experiments/slurm/submit.sh
#
# The variables at the top of both batch scripts can be set here instead, as
# above; they pass through sbatch's environment.
set -euo pipefail
here=$(dirname "$0")
search=$(sbatch --parsable --export=ALL "$here/search_array.sbatch")
fit=$(sbatch --parsable --export=ALL --dependency=afterok:"$search" \
    "$here/fit_multinode.sbatch")
echo "search array $search; fit $fit starts when the whole array has succeeded"
