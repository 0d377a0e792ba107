-- consentd schema, migration 14: the token table's generation.
-- A server keeps the tokens it verified per connection and answers from
-- them while this number is the one it read with them; any change to the
-- tokens table, by whichever process, connection or tool, moves it in the
-- same transaction (the triggers below), so a revocation is seen by the
-- very next request. One row, read in one probe of a one-page table
-- instead of the token index and the token row.
CREATE TABLE token_generation (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    gen  INTEGER NOT NULL
);
INSERT INTO token_generation (id, gen) VALUES (1, 0);
CREATE TRIGGER tokens_gen_insert AFTER INSERT ON tokens
BEGIN
    UPDATE token_generation SET gen = gen + 1 WHERE id = 1;
END;
CREATE TRIGGER tokens_gen_update AFTER UPDATE ON tokens
BEGIN
    UPDATE token_generation SET gen = gen + 1 WHERE id = 1;
END;
CREATE TRIGGER tokens_gen_delete AFTER DELETE ON tokens
BEGIN
    UPDATE token_generation SET gen = gen + 1 WHERE id = 1;
END;
