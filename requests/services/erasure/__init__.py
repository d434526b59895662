"""Erasure requests: every record of the person erased, in an order the stores accept, verified,
and certified without keeping personal data. One module per step; this package holds nothing
else, so each importer names the module it uses.

1. Execution (`run`). Approval creates one erasure job per enabled store
   (`requests.services.jobs`), queued on commit. A job uses connectors to every enabled store (the
   finder needs them all: a store's records can be reachable only through another's; each worker
   keeps them between jobs: `requests.services.store_connections`) and calls the engine's
   `erase_person` for its own store: one transaction per SQL store, in bounded batches, renewing
   the job's lease between batches (a worker that lost its lease stops, and its transaction rolls
   back). Transient store errors are retried with backoff up to a cap; permanent ones fail the job
   and the request needs staff, who see the reason and retry (`POST .../retry/`).
2. Order across stores (`requests.services.job_holds`, the one home of the rule). When store B's
   map references store A, B's records are found through A's (the shop's customer ids lead to the
   CRM's contacts), so A must not be erased before B. The rule comes from the maps
   (`requests.engine.erasure.store_dependencies`): a reference followed from parent to child
   (`follow: children`, the default, or `both`) makes the referenced store wait for the
   referencing one; `follow: parent` the other way round; `follow: none` orders nothing. Stores
   that wait are HELD (`held_for` "order"), like erasures held for the person's access package, at
   the start and at a staff retry alike; `request_advance` releases each once the stores before it
   are done (a downstream service that accepted the erasure counts as done: it has every
   identifier it needs). References in a loop across stores order nothing.
3. Recipients, Art. 19 (`recipients`). Webhook stores receive the erasure through the engine; when
   the service answers "pending", the job waits and `recipients_check` (scheduled) asks the
   service how it stands until it is done or failed. Manual stores become staff tasks, due
   PORTAL_MANUAL_TASK_DAYS after they are handed over (never after the request's due date); staff
   confirm them (`requests.services.job_staff.job_confirm_manual`). A task or a pending recipient
   past its due date moves the request to needs_attention.
4. Verification sweep (`sweep`). Once every job is done, the finder runs again over every store
   (`find_remaining`); the request completes only if nothing is left but held records.
5. Certificate (`certificate`, whose `erasure_finalise` is the finaliser: sweep, then certificate
   and suppression ledger). When the sweep finds records left, the jobs of the stores where they
   remain are marked failed with what remains (counts per collection, no data) and the request
   needs staff; their retry runs those stores again, then the sweep. Otherwise the certificate is
   issued with the completion: stores, collections, counts deleted, masked, set to null, held
   (with the legal basis) and kept (with the reason), times, recipients, the sweep's result; its
   SHA-256 is in the `request.completed` audit event, whose hash is the audit chain's at
   completion. No personal data, not even the email. The person gets an email summary.
6. Suppression ledger (`suppression`). At completion each identifier that singles the person out
   (email, phone, account id, custom types; never names) is kept as a keyed hash only. After a
   backup is restored, `manage.py erasures reapply --since <backup time>` scans each store's
   identity fields in bounded batches (SQL columns streamed, Redis keys by SCAN, file paths
   walked), hashes each value's normal form, and erases the matches through the engine again
   (`suppression_reapply`). Webhook and manual stores cannot list their values: the command names
   them, for their owners to reapply their own erasures.
"""
