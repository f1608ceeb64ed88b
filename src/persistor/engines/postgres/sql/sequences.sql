-- Sequences and their parameters (not their current value: that is data).
SELECT c.relname AS name,
       format('%%s START %%s INCREMENT %%s MINVALUE %%s MAXVALUE %%s CACHE %%s%%s',
              format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement, s.seqmin, s.seqmax,
              s.seqcache, CASE WHEN s.seqcycle THEN ' CYCLE' ELSE '' END) AS definition,
       NULL AS parent_kind, NULL AS parent_name
FROM pg_sequence s
JOIN pg_class c ON c.oid = s.seqrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %(schema)s
  AND NOT EXISTS (SELECT 1 FROM pg_depend d
                  WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
ORDER BY 1
