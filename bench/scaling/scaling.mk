# The scaling measurement (bench/scaling), included by the Makefile after tests/pg/pg.mk (it uses
# postgres-server from there, and PY_VENV and PY from the Makefile).
#
#   make scaling   sign-ins per second with 1, 2 and 4 app-server processes on PostgreSQL and on
#                  the embedded SQLite store, into docs/scaling.md (SCALING_ARGS passes options:
#                  --seconds S, --rounds N, --processes 1,2,4, --stores sqlite,postgres,postgres-async,
#                  --no-one-user)
#
# The PostgreSQL server is a throwaway one (tests/pg/with-postgres.sh) but with PostgreSQL's own
# durable defaults (fsync, full_page_writes and synchronous_commit on): TWOFA_PG_SERVER_OPTS is
# set empty, replacing the test servers' fast, non-durable options, so that it is compared fairly
# with SQLite's synchronous=FULL. Measure on an otherwise idle machine: the run samples the CPUs
# for 2 s first, warns when more than 5% were busy, and writes that and the load average into the
# results.

.PHONY: scaling

SCALING_ARGS ?=

scaling: postgres-server $(PY_VENV)/ready
	$(PY) -m pip install --quiet --disable-pip-version-check ./bindings/python
	TWOFA_PG_SERVER_OPTS= tests/pg/with-postgres.sh $(PY) bench/scaling/scaling.py --output docs/scaling.md $(SCALING_ARGS)
