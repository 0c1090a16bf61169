#!/bin/sh
# Wait for Slurm jobs (array jobs included) to end, then print one line per job or task:
#   JOBID STATE EXITCODE  and, for one that did not complete, the tail of its stderr.
# Exit 0 when every job and task is COMPLETED, 1 otherwise. Usage: wait.sh JOBID...
# (Polls squeue: `sbatch --wait` returns 0 for a job cancelled by a failed dependency.)
set -eu
[ $# -gt 0 ] || { echo "usage: wait.sh JOBID..." >&2; exit 2; }
ids=$(echo "$@" | tr ' ' ',')
while [ -n "$(squeue -h -j "$ids" -o %i 2>/dev/null)" ]; do sleep 1; done
ok=0
for id in "$@"; do
	# One record per task of an array; `scontrol -o` prints each on one line.
	scontrol -o show job "$id" | while read -r rec; do
		field() { printf '%s\n' "$rec" | tr ' ' '\n' | sed -n "s/^$1=//p" | head -n1; }
		job=$(field JobId) task=$(field ArrayTaskId) state=$(field JobState)
		[ -n "$task" ] && job="$(field ArrayJobId)_$task"
		echo "$job $state $(field ExitCode) $(field JobName)"
		if [ "$state" != COMPLETED ]; then
			err=$(field StdErr)
			if [ "$(field Reason)" = DependencyNeverSatisfied ]; then
				echo "  cancelled: a job it depends on failed"
			elif [ -n "$err" ] && [ -s "$err" ]; then
				tail -n 5 "$err" | sed 's/^/  stderr: /'
			fi
		fi
	done
	scontrol -o show job "$id" | grep -qv 'JobState=COMPLETED' && ok=1
done
exit $ok
