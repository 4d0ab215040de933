"""What runs on workers: the job's graph (`graph`) and its transforms.

Sources read batches of records (`sources`), the decode step turns them into instances
(`decode`), RunInference scores them with failures isolated record by record (`inference`,
`isolation`), and sinks write rows and dead letters (`sinks`); counters (`metrics`) and the
live tallies (`progress`) account for every record. Built from a `config.JobConfig` alone.
"""
