// The schemas room: Avro + zod pairs per topic live with their domains; this exports the registry codec.
export {
  RegistryCodec,
  readWireHeader,
  registryFailure,
  subjectOf,
  validateValue,
  type Decoded,
  type RegistryAuth,
  type RegistryCodecOptions,
} from './codec';
