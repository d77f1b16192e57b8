import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3'
import S3rver from 's3rver'
import type { Test } from 'tap'
import { tempDir } from './helper.ts'

/**
 * A real S3-compatible server (s3rver, from npm) on 127.0.0.1, its objects in a temporary folder, with one
 * bucket; `env` points an instance at it, `objects()` lists what the bucket holds.
 */
export async function startS3(t: Test) {
  const bucket = 'parley-files'
  const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: await tempDir(t, 'parley-s3-'), configureBuckets: [{ name: bucket }] })
  const { port } = (await server.run()) as { port: number }
  const endpoint = `http://127.0.0.1:${port}`
  // s3rver's fixed credentials.
  const credentials = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' }
  const client = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials })
  t.teardown(async () => {
    client.destroy()
    await server.close()
  })
  const env = {
    FILE_STORAGE: 's3',
    S3_BUCKET: bucket,
    S3_ENDPOINT: endpoint,
    S3_REGION: 'us-east-1',
    S3_FORCE_PATH_STYLE: 'true',
    S3_ACCESS_KEY_ID: credentials.accessKeyId,
    S3_SECRET_ACCESS_KEY: credentials.secretAccessKey,
  }
  const objects = async () => ((await client.send(new ListObjectsV2Command({ Bucket: bucket }))).Contents ?? []).map((o) => o.Key!).sort()
  return { env, bucket, client, objects }
}
