// GraphQL Code Generator, client preset, persisted documents with the preset's
// default hash (client preset 6 and later: SHA-256, ids `sha256:<hex>`; before
// 6: SHA-1, bare hex). Run from tests/node:
//   npx graphql-codegen --config codegen/codegen.ts
// It writes graphql.ts, gql.ts, ... and persisted-documents.json (id -> document)
// into CODEGEN_OUT (default codegen/generated/default/, never committed).
import type { CodegenConfig } from '@graphql-codegen/cli';

const out = process.env.CODEGEN_OUT ?? 'codegen/generated/default/';

const config: CodegenConfig = {
  schema: '../../schema.graphql',
  documents: ['codegen/documents/*.graphql'],
  ignoreNoDocuments: false,
  generates: {
    [out.endsWith('/') ? out : `${out}/`]: {
      preset: 'client',
      presetConfig: {
        // the manifest for GRAPHQL_TRUSTED_DOCUMENTS, and each document node
        // carries its id in __meta__.hash
        persistedDocuments: true,
      },
    },
  },
};

export default config;
