-- Erasure of a linked Patient (issue 8's $expunge with the MPI, issue 6):
-- the link log stays append-only, except in an expunge transaction
-- (baraza.expunge = on), which may delete the erased patient's entries
-- (V27) and redact the erased patient's id from the `rule` text of other
-- records' entries ("score 31.2 >= auto_link 20 with Patient/x"), and
-- nothing else of them.
CREATE OR REPLACE FUNCTION mpi_link_log_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('baraza.expunge', true) = 'on' THEN
        IF TG_OP = 'DELETE' THEN
            RETURN OLD;
        END IF;
        IF TG_OP = 'UPDATE' AND (to_jsonb(NEW) - 'rule') = (to_jsonb(OLD) - 'rule') THEN
            RETURN NEW;
        END IF;
    END IF;
    RAISE EXCEPTION 'the MPI link log is append-only: % on % refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$$;
