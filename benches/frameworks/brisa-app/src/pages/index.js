export default function Home() {
  return "Brisa benchmark app";
}
