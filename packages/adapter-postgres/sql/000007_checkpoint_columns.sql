-- Disparo store schema, version 7: no table changes. The checkpoint's outcomes and items travel as
-- columns (functions/checkpoint.sql, checkpoint-codec.ts), which the checkpoint of version 6 cannot
-- read. The version moves so that a worker still on an older package, restarting during a rolling
-- upgrade, is refused by migrate() ("upgrade this worker") instead of putting its older functions
-- back over these. A worker of the older package that keeps running meanwhile still works: the new
-- checkpoint accepts its records (functions/_checkpoint_columns.sql).
-- (A migration names the schema: this one documents the table version 6 added, for whoever reads the
-- database without this repository.)
COMMENT ON TABLE :DISPARO_SCHEMA.in_flight IS 'Disparo: one row per send written ahead and not yet recorded; its recipient shows as sending (000006_in_flight.sql).';
