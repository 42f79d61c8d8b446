// As codegen.ts, with SHA-1 document ids: what the client preset wrote by
// default before its version 6 (bare hex, no prefix). It also adds __typename
// to every selection, as a client with a normalized cache (Apollo Client,
// urql's graphcache) wants it; the manifest holds the documents with it.
//   npx graphql-codegen --config codegen/codegen.sha1.ts
import type { CodegenConfig } from '@graphql-codegen/cli';
import { addTypenameSelectionDocumentTransform } from '@graphql-codegen/client-preset';

const out = process.env.CODEGEN_OUT ?? 'codegen/generated/sha1/';

const config: CodegenConfig = {
  schema: '../../schema.graphql',
  documents: ['codegen/documents/*.graphql'],
  ignoreNoDocuments: false,
  generates: {
    [out.endsWith('/') ? out : `${out}/`]: {
      preset: 'client',
      presetConfig: {
        persistedDocuments: { hashAlgorithm: 'sha1' },
      },
      documentTransforms: [addTypenameSelectionDocumentTransform],
    },
  },
};

export default config;
