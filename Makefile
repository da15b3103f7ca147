# Every target runs inside tools/env.sh (venv, AMENT_PREFIX_PATH, LOCALHOST-only DDS discovery,
# private ROS_DOMAIN_ID, shared-memory profile). `make test` and `make demo` set up and build
# everything themselves, idempotently.
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
ENV := . tools/env.sh &&

.PHONY: setup build test demo bench lint clean

setup:
	bash tools/setup.sh

build: setup
	$(ENV) colcon build --symlink-install --event-handlers console_cohesion+
	touch build/AMENT_IGNORE install/AMENT_IGNORE log/AMENT_IGNORE

test: build
	$(ENV) colcon test --event-handlers console_direct+ --return-code-on-test-failure
	$(ENV) colcon test-result --verbose

demo: build
	$(ENV) bash tools/demo.sh $(DEMO_ARGS)

bench: build
	$(ENV) pinpoint3d bench all
	$(ENV) python -m pinpoint3d_ros.benchmark

lint: setup
	$(ENV) ament_flake8 pinpoint3d_core pinpoint3d_ros launch test scripts setup.py
	$(ENV) ament_pep257 pinpoint3d_core pinpoint3d_ros launch test scripts setup.py

clean:
	rm -rf build install log
