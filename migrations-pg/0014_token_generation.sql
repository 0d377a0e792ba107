-- consentd schema for PostgreSQL, migration 14: the token table's
-- generation, moved in the same transaction as any change to tokens, so a
-- connection may keep the token rows it verified while it is unchanged
-- (see migrations/0014_token_generation.sql).
CREATE TABLE token_generation (
    id   bigint  PRIMARY KEY CHECK (id = 1),
    gen  bigint  NOT NULL
);
INSERT INTO token_generation (id, gen) VALUES (1, 0);
CREATE FUNCTION tokens_gen() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE token_generation SET gen = gen + 1 WHERE id = 1;
    RETURN NULL;
END;
$$;
CREATE TRIGGER tokens_gen_insert AFTER INSERT ON tokens
    FOR EACH ROW EXECUTE FUNCTION tokens_gen();
CREATE TRIGGER tokens_gen_update AFTER UPDATE ON tokens
    FOR EACH ROW EXECUTE FUNCTION tokens_gen();
CREATE TRIGGER tokens_gen_delete AFTER DELETE ON tokens
    FOR EACH ROW EXECUTE FUNCTION tokens_gen();
