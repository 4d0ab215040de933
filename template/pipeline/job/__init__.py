"""What runs on workers: the job's graph (`graph`) and its transforms.

Sources read batches of records (`sources`), the decode step turns them into instances
(`decode`), RunInference scores them with failures isolated record by record (`inference`,
`isolation`), and sinks write rows and dead letters (`sinks`); counters (`metrics`) and the
live tallies (`progress`) account for every record. A batch job's last step replaces the earlier
run's outputs once both writes have succeeded (`replace`, with `replace_text` and `replace_tables`).
Built from a `config.JobConfig` alone.
"""
