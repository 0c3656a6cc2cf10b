// Values shared by the Node-side test setup and the tests running in workerd.
export const testJwtSecret = "test-only-secret-0123456789abcdef0123456789abcdef";
