# The multi-process race test (tests/race), included by the Makefile after tests/pg/pg.mk (it uses
# pg-setup and PG_RACE_SUITE from there, and PY_VENV, PY, node-setup and NPM_CI from the Makefile).
#
#   make race-tests   two Python and two Node processes, each with its own engine, on one throwaway
#                     PostgreSQL database (tests/pg/with-postgres.sh): the same codes submitted by
#                     all four at once are accepted exactly once, and concurrent wrong codes are
#                     counted exactly up to the lockout threshold (tests/race/race.py)
# `make pg-tests` (and so `make test`) runs it too, on the same server as the stores' suites.
#
# The Python processes use the package installed in $(PY_VENV) (with psycopg from
# bindings/python/requirements-dev.txt); the Node ones import bindings/node, built against
# target/release/libtwofa.so by node-setup, and `pg` from examples/node-host/node_modules.

.PHONY: race-tests

race-tests: pg-setup
	tests/pg/with-postgres.sh $(PG_RACE_SUITE)
