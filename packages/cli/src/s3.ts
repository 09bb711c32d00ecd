import type { ArtifactS3Config } from '@ameide/config';
import { UsageError } from './args.js';

/**
 * Downloads `s3://bucket/key` objects with the standard AWS settings, for handoff bundles the worker
 * stored in an S3 artifact store. The bundle's sha256 is checked by the caller.
 */
export function createS3Loader(settings: ArtifactS3Config): (bucket: string, key: string) => Promise<Buffer> {
  return async (bucket, key) => {
    // Loaded when first needed: the AWS SDK is large, and most commands never touch S3.
    const { GetObjectCommand, S3Client } = await import('@aws-sdk/client-s3');
    const client = new S3Client({
      endpoint: settings.endpoint,
      region: settings.region,
      forcePathStyle: settings.forcePathStyle,
      credentials: settings.credentials,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    try {
      const res = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      return Buffer.from(await res.Body!.transformToByteArray());
    } catch (err) {
      throw new UsageError(`cannot download s3://${bucket}/${key}: ${(err as Error).message} (check AWS_ENDPOINT_URL_S3 and the AWS credentials)`);
    } finally {
      client.destroy();
    }
  };
}
