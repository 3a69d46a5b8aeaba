-- Creates one database and role per service for the local compose stack.
-- Passwords are the development placeholder; real environments use Vault-issued credentials.
CREATE ROLE payments LOGIN PASSWORD 'changeme';
CREATE DATABASE payments OWNER payments;
CREATE ROLE orders LOGIN PASSWORD 'changeme';
CREATE DATABASE orders OWNER orders;
CREATE ROLE users LOGIN PASSWORD 'changeme';
CREATE DATABASE users OWNER users;
CREATE ROLE inventory LOGIN PASSWORD 'changeme';
CREATE DATABASE inventory OWNER inventory;
CREATE ROLE auth LOGIN PASSWORD 'changeme';
CREATE DATABASE auth OWNER auth;
