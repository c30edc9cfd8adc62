#!/usr/bin/env bash
# The GRPO twin of lens_math.sh: same settings, lensrl's GRPO estimator (equal to verl's built-in
# `grpo`, tests_verl/test_advantages.py) so that both runs log the same groups/* and lens/* metrics.
# UNTESTED ON GPU. Usage as lens_math.sh.
set -euo pipefail
ADV_ESTIMATOR=lensrl_grpo exec bash "$(dirname "$0")/lens_math.sh" "$@"
