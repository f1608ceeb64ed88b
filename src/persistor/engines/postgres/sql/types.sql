-- Types of the schema: enums (with their labels in order), domains, composite and range types.
SELECT t.typname AS name,
       CASE t.typtype
         WHEN 'e' THEN 'ENUM (' || (SELECT string_agg(quote_literal(e.enumlabel), ', '
                                                      ORDER BY e.enumsortorder)
                                    FROM pg_enum e WHERE e.enumtypid = t.oid) || ')'
         WHEN 'd' THEN concat_ws(' ', 'DOMAIN ' || format_type(t.typbasetype, t.typtypmod),
                                 CASE WHEN t.typnotnull THEN 'NOT NULL' END,
                                 (SELECT string_agg(pg_get_constraintdef(k.oid, true), ' '
                                                    ORDER BY k.conname)
                                  FROM pg_constraint k WHERE k.contypid = t.oid))
         WHEN 'r' THEN 'RANGE (' || (SELECT format_type(r.rngsubtype, NULL) FROM pg_range r
                                     WHERE r.rngtypid = t.oid) || ')'
         ELSE 'COMPOSITE (' || (SELECT string_agg(quote_ident(a.attname) || ' '
                                                  || format_type(a.atttypid, a.atttypmod), ', '
                                                  ORDER BY a.attnum)
                                FROM pg_attribute a
                                WHERE a.attrelid = t.typrelid AND a.attnum > 0
                                  AND NOT a.attisdropped) || ')'
       END AS definition,
       NULL AS parent_kind, NULL AS parent_name
FROM pg_type t
JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE n.nspname = %(schema)s
  AND (t.typtype IN ('e', 'd', 'r')
       OR (t.typtype = 'c' AND (SELECT c.relkind FROM pg_class c WHERE c.oid = t.typrelid) = 'c'))
  AND NOT EXISTS (SELECT 1 FROM pg_depend d
                  WHERE d.classid = 'pg_type'::regclass AND d.objid = t.oid AND d.deptype = 'e')
ORDER BY 1
