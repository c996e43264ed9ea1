// Shared signed-in state.
export const session = { me: null, maxChars: 500 };
