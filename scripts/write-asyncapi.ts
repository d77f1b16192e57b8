import { writeFile } from 'node:fs/promises'
import { asyncapiYaml } from '../src/realtime/asyncapi.ts'

await writeFile(new URL('../asyncapi.yaml', import.meta.url), asyncapiYaml())
console.log('wrote asyncapi.yaml')
