import { writeFile } from 'node:fs/promises'
import { openapiYaml } from './openapi.ts'

await writeFile(new URL('../openapi.yaml', import.meta.url), await openapiYaml())
console.log('wrote openapi.yaml')
