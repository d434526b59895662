"""The data plane: store maps, the reference graph, the finder and the erasure planner.

Plain Python with no Django imports, so it can be read, run and tested on its own; Celery tasks
call it with a store map, a connection URL and identity values.
"""
