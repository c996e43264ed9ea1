"""Tools for running and testing Lifeboat on one machine: the local stack, moto patches,
the fake primaries and the in-memory fakes of every store. Never packaged for Lambda."""
