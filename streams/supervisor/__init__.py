"""N members of a consumer group on one machine from one command: ``streams worker
--processes N`` and ``streams connect NAME --processes N`` start the same command N times,
each child with its own data directory and ports, and supervise them as one."""
