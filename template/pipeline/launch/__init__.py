"""What runs at launch, on the Flex Template launcher VM or the user's machine, before any worker starts.

The parameters (`options`), where and how the job runs (`environment`), every check that can be
made before work starts (`validation` and the `*_checks` it calls, `feeding` for how records fit
the model), clearing an earlier run's outputs (`cleanup`), and what a local run shows (`progress`,
`summary`). Its product is a `config.JobConfig`; nothing here is imported by job-time code.
"""
